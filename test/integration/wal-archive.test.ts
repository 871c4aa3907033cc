// WAL archiving through the archive module (ext/pgwarden_archive, archive_library): a real
// PostgreSQL server (the pgwarden service account, Unix socket) hands each segment to a real
// archive agent from inside its archiver process. A crash between the agent's durable store and
// PostgreSQL's bookkeeping (the postmaster and all its processes killed with SIGKILL while the
// agent holds back its OK) and the agent dying at the same point both end with every segment
// archived once in the repository (the second hand-over of a stored segment is recognised as
// identical), the failure visible in pg_stat_archiver and the server log, no marker in clear in
// the repository, and a point-in-time restore from the base backup through those segments
// giving exactly the rows committed before the target.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Cluster } from '../../src/engine/cluster.js';
import { serviceAccount, type OsAccount } from '../../src/host/os-user.js';
import { findPgBinaries } from '../../src/host/pg-binaries.js';
import { archiveModuleAvailable } from '../../src/engine/server-libraries.js';
import { DirectoryRepository } from '../../src/storage/backup/repository.js';
import { replicationHbaLine, startArchiveAgent, walArchiveSettings, type ArchiveAgent, type ArchiveAgentEvent } from '../../src/storage/backup/wal-archive.js';
import { createBaseBackup } from '../../src/storage/backup/base-backup.js';
import { restoreToPointInTime } from '../../src/storage/backup/restore.js';
import { walObjectKey } from '../../src/storage/backup/wal-segment.js';
import { TestKek } from '../../support/test-kek.js';
import { filesUnder } from '../helpers/scan.js';

const SERVER = 'wal-src';
const SUPERUSER = 'pgw_maint';
const PASSWORD = 'Wal-Archive-Passw0rd!';
const MARKER = `MARK${'ER_'}9dd4e461268c8034f5c8564e155c67a6`; // 'MARK' || 'ER_' || md5('x'), built in SQL below

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The postmaster and every process it started (from /proc: ppid is field 4 of stat). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

const skip = archiveModuleAvailable(findPgBinaries()) ? false : 'pgwarden_archive.so is not installed (scripts/install-deps.sh builds it)';

describe('WAL archiving through the archive module', { skip, timeout: 240_000 }, () => {
  let root: string;
  let account: OsAccount;
  let repo: DirectoryRepository;
  let socketPath: string;
  let agent: ArchiveAgent | null = null;
  let cluster: Cluster;
  let restored: Cluster | null = null;
  const kek = new TestKek();
  const events: ArchiveAgentEvent[] = [];
  /** What the agent does once it stored `name` and before it answers OK (set per test). */
  let atAcknowledge: ((name: string) => Promise<void>) | null = null;

  const startAgent = async () => {
    agent = await startArchiveAgent({
      socketPath,
      owner: account,
      repo,
      serverId: SERVER,
      kek,
      onEvent: (e) => events.push(e),
      beforeAcknowledge: (name) => atAcknowledge?.(name),
    });
  };
  const connect = async (socketDir: string) => {
    const c = new pg.Client({ host: socketDir, user: SUPERUSER, password: PASSWORD, database: 'postgres' });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const query = async <R extends pg.QueryResultRow>(sql: string): Promise<R[]> => {
    const c = await connect(cluster.socketDir);
    try {
      const r = (await c.query<R>(sql)) as pg.QueryResult<R> | pg.QueryResult<R>[];
      return Array.isArray(r) ? r.at(-1)!.rows : r.rows; // several statements: the last one's rows
    } finally {
      await c.end();
    }
  };
  const archiver = async () =>
    (
      await query<{ last: string | null; failed: string | null; failures: number }>(
        'select last_archived_wal as last, last_failed_wal as failed, failed_count::int as failures from pg_stat_archiver',
      )
    )[0]!;
  const waitArchived = async (walFile: string) => {
    const end = Date.now() + 60_000;
    for (;;) {
      const st = await archiver();
      if (st.last !== null && st.last >= walFile) return;
      if (Date.now() > end) throw new Error(`${walFile} was not archived (last ${st.last}, last failed ${st.failed})`);
      await sleep(50);
    }
  };
  /** Switches to a new segment; returns the name of the one it closed. */
  const switchWal = async (): Promise<string> => {
    const rows = await query<{ f: string }>(`insert into switches default values; select pg_walfile_name(pg_switch_wal()) as f`);
    return rows[0]!.f;
  };
  const currentSegment = async () => (await query<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn()) as f'))[0]!.f;
  const stored = async (name: string) => readFileSync(path.join(repo.root, `${walObjectKey(SERVER, name)}`));
  const archivedEvents = (name: string) => events.filter((e) => e.type === 'archived' && e.name === name).length;
  const serverLog = () =>
    filesUnder(path.join(cluster.options.dataDir, 'log'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');

  before(async () => {
    root = mkdtempSync('/tmp/pgw-walarch-');
    chmodSync(root, 0o711);
    account = serviceAccount();
    repo = new DirectoryRepository(path.join(root, 'repo'));
    socketPath = path.join(root, 'agent', 's.sock');
    await startAgent();
    mkdirSync(path.join(root, 'src'), { mode: 0o711 });
    mkdirSync(path.join(root, 'run'), { mode: 0o711 });
    cluster = new Cluster({
      dataDir: path.join(root, 'src', 'data'),
      socketDir: path.join(root, 'run', 'src'),
      account,
      settings: walArchiveSettings({ socketPath, archiveLibrary: true }),
    });
    await cluster.init(SUPERUSER, PASSWORD);
    appendFileSync(path.join(root, 'src', 'data', 'pg_hba.conf'), `${replicationHbaLine(SUPERUSER)}\n`);
    await cluster.start();
    await query(`create table items (id int primary key, note text); insert into items select g, 'row ' || g from generate_series(1, 100) g`);
    await query(`create table secrets (v text); insert into secrets values ('MARK' || 'ER_' || md5('x'))`);
    await query(`create table switches (n serial)`);
  });

  after(async () => {
    atAcknowledge = null;
    await restored?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    await agent?.close().catch(() => undefined);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('archives through the archive module, not archive_command, encrypted in the repository', async () => {
    const settings = await query<{ name: string; setting: string }>(
      `select name, setting from pg_settings where name in ('archive_library', 'archive_command', 'archive_mode')
       union all select 'pgwarden_archive.socket', current_setting('pgwarden_archive.socket') order by name`, // loaded in the archiver only: a placeholder here
    );
    assert.deepEqual(settings, [
      { name: 'archive_command', setting: '' },
      { name: 'archive_library', setting: 'pgwarden_archive' },
      { name: 'archive_mode', setting: 'on' },
      { name: 'pgwarden_archive.socket', setting: socketPath },
    ]);
    const name = await switchWal();
    await waitArchived(name);
    assert.equal(archivedEvents(name), 1);
    assert.equal((await stored(name)).subarray(0, 8).toString('latin1'), 'PGWWAL01', "the stored segment is the agent's ciphertext");
    assert.deepEqual(
      filesUnder(repo.root).filter((f) => readFileSync(f).includes(MARKER)),
      [],
      'no repository file holds the marker in clear',
    );
    assert.ok(
      filesUnder(path.join(cluster.options.dataDir, 'pg_wal')).some((f) => readFileSync(f).includes(MARKER)),
      'control: the WAL in the data dir holds it',
    );
  });

  let backupStart = '';
  it('takes a base backup whose WAL goes through the module', async () => {
    const m = await createBaseBackup({ socketDir: cluster.socketDir, user: SUPERUSER, password: PASSWORD, repo, serverId: SERVER, kek });
    backupStart = m.startWalFile;
    assert.ok(await repo.stat(walObjectKey(SERVER, m.stopWalFile)));
  });

  it("a crash between the agent's store and PostgreSQL's acknowledgement loses nothing and stores the segment once", async () => {
    await query(`insert into items select g, 'before crash ' || g from generate_series(101, 200) g`);
    const victim = await currentSegment();
    const postmaster = cluster.pid!;
    let killed: number[] = [];
    let storedAtCrash: Buffer | null = null;
    const crashed = new Promise<void>((resolve) => {
      atAcknowledge = async (name) => {
        if (name !== victim || killed.length) return;
        storedAtCrash = await stored(name); // durably stored: what the agent answers OK for
        killed = processTree(postmaster);
        for (const pid of killed) process.kill(pid, 'SIGKILL');
        while (killed.some(alive)) await sleep(10); // the archiver is gone before any OK could reach it
        resolve();
      };
    });
    const restarted = new Promise<void>((resolve) => cluster.once('restarted', resolve));
    await query('select pg_switch_wal()').catch(() => undefined);
    await crashed;
    atAcknowledge = null;
    assert.ok(killed.length > 2, `the postmaster and its processes were killed (${killed.length})`);
    await restarted;
    assert.notEqual(cluster.pid, postmaster, 'a new postmaster');
    await waitArchived(victim);
    assert.equal(archivedEvents(victim), 2, 'PostgreSQL handed the segment over again after the crash');
    assert.ok(storedAtCrash !== null && (await stored(victim)).equals(storedAtCrash), 'the second hand-over left the stored segment as it was');
    assert.deepEqual(agent!.failures, [], 'the agent found the second copy identical');
    await query(`insert into items select g, 'after crash ' || g from generate_series(201, 300) g`);
  });

  it('the agent dying after its store and before its answer: PostgreSQL says so, retries, and the segment is stored once', async () => {
    const victim = await currentSegment();
    const failuresBefore = (await archiver()).failures;
    let storedAtDeath: Buffer | null = null;
    const died = new Promise<void>((resolve) => {
      atAcknowledge = async (name) => {
        if (name !== victim || storedAtDeath) return;
        storedAtDeath = await stored(name);
        const dying = agent!;
        agent = null;
        await dying.close(); // drops every connection: no answer reaches the archiver
        resolve();
      };
    });
    await query('select pg_switch_wal()');
    await died;
    atAcknowledge = null;
    const end = Date.now() + 60_000;
    while ((await archiver()).failures === failuresBefore) {
      if (Date.now() > end) throw new Error('PostgreSQL did not report the failed hand-over');
      await sleep(50);
    }
    const st = await archiver();
    assert.equal(st.failed, victim);
    assert.match(
      serverLog(),
      new RegExp(`pgwarden archive of ${victim} failed: (the archive agent closed the connection without an answer|cannot reach the archive agent)`),
    );
    await startAgent();
    const next = await switchWal(); // a new segment wakes the archiver, which retries the old one first
    await waitArchived(next);
    assert.ok(storedAtDeath !== null && (await stored(victim)).equals(storedAtDeath), 'the retry left the stored segment as it was');
    assert.deepEqual(agent!.failures, []);
  });

  it('restores to a point in time through the segments of both crashes', async () => {
    await query(`insert into items select g, 'before target ' || g from generate_series(301, 400) g`);
    const targetTime = (await query<{ t: Date }>('select clock_timestamp() as t'))[0]!.t;
    await query(`insert into items select g, 'after target ' || g from generate_series(401, 500) g`);
    await waitArchived(await switchWal());
    const target = path.join(root, 'restored', 'data');
    const r = await restoreToPointInTime({ repo, sourceServerId: SERVER, targetDataDir: target, owner: account, targetTime, kek });
    assert.ok(r.walFilesRestored >= 3, `WAL files replayed: ${r.walFilesRestored} (from ${backupStart})`);
    restored = new Cluster({ dataDir: target, socketDir: path.join(root, 'run', 'new'), account });
    restored.writeConfig();
    await restored.start();
    const c = await connect(restored.socketDir);
    try {
      const rows = await c.query<{ n: number; hi: number; crash: number }>(
        `select count(*) filter (where id <= 400)::int as n, max(id) filter (where id <= 400) as hi,
                count(*) filter (where note like 'after crash%')::int as crash from items`,
      );
      assert.deepEqual(rows.rows[0], { n: 400, hi: 400, crash: 100 });
      const later = await c.query<{ n: number }>(`select count(*)::int as n from items where note like 'after target%'`);
      assert.equal(later.rows[0]!.n, 0, 'nothing committed after the target time');
    } finally {
      await c.end();
    }
  });
});
