// Encrypted backups against a real PostgreSQL cluster (run as the OS user pgwarden, Unix socket
// only) archiving its WAL through a real archive agent: base backup, point-in-time restore into
// a new data dir, tamper detection on the base backup and on a WAL segment, no clear data in the
// repository, and retention. The KEK is a test-only provider (support/test-kek.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
  closeSync,
  appendFileSync,
} from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Cluster } from '../../src/engine/cluster.js';
import { serviceAccount, type OsAccount } from '../../src/host/os-user.js';
import { DirectoryRepository } from '../../src/storage/backup/repository.js';
import { replicationHbaLine, startArchiveAgent, walArchiveSettings, type ArchiveAgent } from '../../src/storage/backup/wal-archive.js';
import { createBaseBackup } from '../../src/storage/backup/base-backup.js';
import { restoreToPointInTime } from '../../src/storage/backup/restore.js';
import { listBackups, type BackupManifest } from '../../src/storage/backup/manifest.js';
import { applyRetention } from '../../src/storage/backup/retention.js';
import { walObjectKey } from '../../src/storage/backup/wal-segment.js';
import { segmentPosition } from '../../src/storage/backup/wal-names.js';
import { TestKek } from '../../support/test-kek.js';
import { filesUnder } from '../helpers/scan.js';

const SERVER = 'bk-src';
const SUPERUSER = 'pgw_maint';
const PASSWORD = 'Backup-Test-Passw0rd!';
const MARKER = `MARKER_${'9dd4e461268c8034f5c8564e155c67a6'}`; // 'MARK' || 'ER_' || md5('x'), built in SQL below

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function containsMarker(dir: string): string[] {
  return filesUnder(dir).filter((f) => readFileSync(f).includes(MARKER));
}

function flipByte(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0x01;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

describe('encrypted backups with a real PostgreSQL server', { timeout: 240_000 }, () => {
  let root: string;
  let account: OsAccount;
  let repo: DirectoryRepository;
  let agent: ArchiveAgent;
  let cluster: Cluster;
  let restored: Cluster | null = null;
  const kek = new TestKek();
  let client: pg.Client;
  let backup: BackupManifest;
  let targetTime: Date;
  let progressCalls = 0;

  const connect = async (socketDir: string) => {
    const c = new pg.Client({ host: socketDir, user: SUPERUSER, password: PASSWORD, database: 'postgres' });
    await c.connect();
    return c;
  };
  const waitArchived = async (walFile: string) => {
    const end = Date.now() + 30_000;
    while (!(await repo.stat(walObjectKey(SERVER, walFile)))) {
      if (Date.now() > end) throw new Error(`${walFile} was not archived`);
      await sleep(50);
    }
  };

  before(async () => {
    root = mkdtempSync('/tmp/pgw-bk-');
    chmodSync(root, 0o711);
    account = serviceAccount();
    repo = new DirectoryRepository(path.join(root, 'repo'));
    const socketPath = path.join(root, 'agent', 's.sock');
    agent = await startArchiveAgent({ socketPath, owner: account, repo, serverId: SERVER, kek });
    cluster = new Cluster({
      dataDir: path.join(root, 'src', 'data'),
      socketDir: path.join(root, 'run', 'src'),
      account,
      settings: walArchiveSettings({ socketPath }),
    });
    mkdirSync(path.join(root, 'src'), { mode: 0o711 });
    mkdirSync(path.join(root, 'run'), { mode: 0o711 });
    await cluster.init(SUPERUSER, PASSWORD);
    appendFileSync(path.join(root, 'src', 'data', 'pg_hba.conf'), `${replicationHbaLine(SUPERUSER)}\n`);
    await cluster.start();
    client = await connect(cluster.socketDir);
    await client.query(`create table items (id int primary key, note text)`);
    await client.query(`insert into items select g, 'row ' || g from generate_series(1, 100) g`);
    await client.query(`create table secrets (v text)`);
    await client.query(`insert into secrets values ('MARK' || 'ER_' || md5('x'))`);
    // Some bulk so the base backup spans several encrypted chunks.
    await client.query(`create table filler as select g, md5(g::text) as h from generate_series(1, 100000) g`);
  });

  after(async () => {
    await client?.end().catch(() => undefined);
    await restored?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await agent?.close().catch(() => undefined);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('takes a base backup: encrypted in the repository, with a manifest and its WAL archived', async () => {
    backup = await createBaseBackup({
      socketDir: cluster.socketDir,
      user: SUPERUSER,
      password: PASSWORD,
      repo,
      serverId: SERVER,
      kek,
      onProgress: () => progressCalls++,
    });
    assert.ok(progressCalls > 0, 'progress was reported');
    assert.match(backup.startLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.equal(backup.timeline, 1);
    assert.ok(backup.plaintextBytes > 10 * 1024 * 1024, `backup holds the data dir (${backup.plaintextBytes} bytes)`);
    assert.ok(backup.ciphertextBytes > backup.plaintextBytes);
    assert.ok(await repo.stat(walObjectKey(SERVER, backup.stopWalFile)), 'the end WAL segment is archived before the backup is declared complete');
    const listed = await listBackups(repo, SERVER);
    assert.deepEqual(
      listed.map((b) => b.backupId),
      [backup.backupId],
    );
    const base = path.join(repo.root, SERVER, 'base', backup.backupId);
    assert.deepEqual(readdirSync(base).sort(), ['base.tar.pgwenc', 'manifest.json']);
    assert.equal(statSync(path.join(base, 'base.tar.pgwenc')).mode & 0o777, 0o600);
    assert.equal(statSync(base).mode & 0o777, 0o700);
    assert.equal(readFileSync(path.join(base, 'base.tar.pgwenc')).subarray(0, 8).toString('latin1'), 'PGWAEAD1');
  });

  it('restores to a point in time: exactly the rows committed before it', async () => {
    await client.query(`insert into items select g, 'row ' || g from generate_series(101, 200) g`);
    await sleep(1100);
    targetTime = (await client.query<{ t: Date }>('select now() as t')).rows[0]!.t;
    await sleep(1100);
    await client.query(`insert into items select g, 'row ' || g from generate_series(201, 300) g`);
    const sw = await client.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f');
    await waitArchived(sw.rows[0]!.f);

    const phases = new Set<string>();
    const target = path.join(root, 'restored', 'data');
    const r = await restoreToPointInTime({
      repo,
      sourceServerId: SERVER,
      targetDataDir: target,
      owner: account,
      targetTime,
      kek,
      onProgress: (p) => phases.add(p.phase),
    });
    assert.equal(r.backup.backupId, backup.backupId);
    assert.ok(r.walFilesRestored >= 1);
    assert.ok(phases.has('extract') && phases.has('replay'), `progress phases: ${[...phases].join(',')}`);
    assert.ok(!existsSync(path.join(target, 'recovery.signal')), 'recovery finished and promoted');

    restored = new Cluster({ dataDir: target, socketDir: path.join(root, 'run', 'new'), account });
    restored.writeConfig();
    await restored.start();
    const c = await connect(restored.socketDir);
    try {
      const rows = await c.query<{ n: number; lo: number; hi: number }>('select count(*)::int as n, min(id) as lo, max(id) as hi from items');
      assert.deepEqual(rows.rows[0], { n: 200, lo: 1, hi: 200 });
      const inRecovery = await c.query<{ r: boolean }>('select pg_is_in_recovery() as r');
      assert.equal(inRecovery.rows[0]!.r, false, 'the restored server is promoted (writable)');
    } finally {
      await c.end();
    }
    await restored.stop();
    restored = null;
  });

  it('refuses a base backup with one flipped byte, and leaves no data dir behind', async (t) => {
    const file = path.join(repo.root, SERVER, 'base', backup.backupId, 'base.tar.pgwenc');
    const offset = Math.floor(statSync(file).size / 2);
    flipByte(file, offset);
    const target = path.join(root, 'tampered-base', 'data');
    try {
      await assert.rejects(restoreToPointInTime({ repo, sourceServerId: SERVER, targetDataDir: target, owner: account, targetTime, kek }), (err: Error) => {
        t.diagnostic(err.message);
        assert.equal(err.name, 'BackupTamperedError');
        assert.match(err.message, /base\.tar\.pgwenc' failed authentication: its ciphertext was altered/);
        return true;
      });
      assert.deepEqual(readdirSync(path.dirname(target)), [], 'no half-built data dir is left');
    } finally {
      flipByte(file, offset);
    }
  });

  it('refuses a WAL segment with one flipped byte with a clear error', async (t) => {
    // The newest segment holds the rows inserted after the backup: recovery to targetTime needs it.
    const segments = (await repo.list(`${SERVER}/wal`))
      .map((o) => path.basename(o.key, '.pgwenc'))
      .filter((n) => /^[0-9A-F]{24}$/.test(n))
      .sort();
    const newest = segments.at(-1)!;
    const file = path.join(repo.root, SERVER, 'wal', `${newest}.pgwenc`);
    const offset = statSync(file).size - 100;
    flipByte(file, offset);
    const target = path.join(root, 'tampered-wal', 'data');
    try {
      await assert.rejects(restoreToPointInTime({ repo, sourceServerId: SERVER, targetDataDir: target, owner: account, targetTime, kek }), (err: Error) => {
        t.diagnostic(err.message);
        assert.equal(err.name, 'BackupTamperedError');
        assert.match(err.message, new RegExp(`${newest}\\.pgwenc' failed authentication`));
        return true;
      });
      assert.deepEqual(readdirSync(path.dirname(target)), [], 'no half-built data dir is left');
    } finally {
      flipByte(file, offset);
    }
  });

  it('says clearly when no backup completed before the requested time', async () => {
    const when = new Date(Date.parse(backup.startTime) - 60_000);
    await assert.rejects(
      restoreToPointInTime({ repo, sourceServerId: SERVER, targetDataDir: path.join(root, 'too-early', 'data'), owner: account, targetTime: when, kek }),
      { name: 'NoBackupBeforeError', message: `No backup of server '${SERVER}' completed before ${when.toISOString()}.` },
    );
  });

  it('keeps the data out of the repository in the clear (the control: it is clear in the data dir)', async () => {
    await client.query('checkpoint');
    assert.ok(containsMarker(path.join(root, 'src', 'data', 'base')).length > 0, 'control: the marker is in the clear data files');
    assert.deepEqual(containsMarker(repo.root), [], 'no repository file holds the marker');
  });

  it('retention deletes old backups and the WAL only they needed, keeping the base of the window', async () => {
    await client.query(`insert into items select g, 'row ' || g from generate_series(301, 310) g`);
    const second = await createBaseBackup({ socketDir: cluster.socketDir, user: SUPERUSER, password: PASSWORD, repo, serverId: SERVER, kek });
    const walBefore = (await repo.list(`${SERVER}/wal`)).map((o) => path.basename(o.key, '.pgwenc'));
    // Nothing is older than 7 days: every backup stays; only WAL from before the first backup goes.
    const first = await applyRetention({ repo, serverId: SERVER, days: 7 });
    assert.deepEqual(first.deletedBackups, []);
    const firstStart = segmentPosition(backup.startWalFile)!;
    assert.deepEqual(first.deletedWalFiles, walBefore.filter((n) => /^[0-9A-F]{24}$/.test(n) && segmentPosition(n)! < firstStart).sort());
    assert.deepEqual(
      (await listBackups(repo, SERVER)).map((b) => b.backupId),
      [backup.backupId, second.backupId],
    );
    const walMid = (await repo.list(`${SERVER}/wal`)).map((o) => path.basename(o.key, '.pgwenc'));
    // Two days later with 1 day of retention: both backups are before the window; the newer is
    // the base for its first moments and stays, the older goes with the WAL before `second`.
    const result = await applyRetention({ repo, serverId: SERVER, days: 1, now: new Date(Date.now() + 2 * 24 * 3600_000) });
    assert.deepEqual(result.deletedBackups, [backup.backupId]);
    const limit = segmentPosition(second.startWalFile)!;
    const expectGone = walMid.filter((n) => /^[0-9A-F]{24}/.test(n) && segmentPosition(n)! < limit).sort();
    assert.ok(expectGone.length > 0);
    assert.deepEqual([...result.deletedWalFiles].sort(), expectGone);
    assert.deepEqual(
      (await listBackups(repo, SERVER)).map((b) => b.backupId),
      [second.backupId],
    );
    assert.ok(!existsSync(path.join(repo.root, SERVER, 'base', backup.backupId)));
    const walAfter = (await repo.list(`${SERVER}/wal`)).map((o) => path.basename(o.key, '.pgwenc'));
    assert.ok(walAfter.includes(second.startWalFile) && walAfter.includes(second.stopWalFile));
  });
});
