// Backup benchmark: the AEAD stream's encrypt/decrypt throughput in memory, then a real
// PostgreSQL server (OS user pgwarden, Unix socket, WAL archived through the archive agent) with
// a generated database of --size-mib MiB (default 1024): time and MB/s of an encrypted base
// backup and of a restore (decrypt + untar + WAL replay + promote) into a new data dir, with a
// progress line on stderr as the CLI shows it. The restored server is started and its row count
// checked. Not a timed test, gates nothing; numbers on a shared 2-core machine are noisy.
// Run: npx tsc -p . && node dist/bench/storage-backup.js [--size-mib 1024] [--crypto-mib 256]
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { Cluster } from '../src/engine/cluster.js';
import { serviceAccount } from '../src/host/os-user.js';
import { DirectoryRepository } from '../src/storage/backup/repository.js';
import { replicationHbaLine, startArchiveAgent, walArchiveSettings } from '../src/storage/backup/wal-archive.js';
import { createBaseBackup } from '../src/storage/backup/base-backup.js';
import { restoreToPointInTime } from '../src/storage/backup/restore.js';
import { decryptStream, encryptStream } from '../src/storage/backup/cipher.js';
import { formatProgress, type BackupProgress } from '../src/storage/backup/progress.js';
import { walObjectKey } from '../src/storage/backup/wal-segment.js';
import { TestKek } from '../support/test-kek.js';
import { onCleanup, runBench } from './lib/cleanup.js';
import { fixed, table } from './lib/format.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const SIZE_MIB = arg('size-mib', Number(process.env.BACKUP_BENCH_SIZE_MIB ?? 1024));
const CRYPTO_MIB = arg('crypto-mib', 256);
const USER = 'pgw_maint';
const PASSWORD = `Bench-${randomBytes(8).toString('hex')}!`;
const MB = 1e6;

function progressLine(label: string): (p: BackupProgress) => void {
  return (p) => process.stderr.write(`\r${label} ${formatProgress(p)}\x1b[K${p.phase === 'done' ? '\n' : ''}`);
}

async function cryptoThroughput(): Promise<{ enc: number; dec: number }> {
  const key = randomBytes(32);
  const aad = Buffer.from('bench');
  const block = randomBytes(1 << 20);
  const blocks = () =>
    Readable.from(
      (function* () {
        for (let i = 0; i < CRYPTO_MIB; i++) yield block;
      })(),
    );
  const sealed: Buffer[] = [];
  let t = performance.now();
  await pipeline(blocks(), encryptStream(key, aad), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) sealed.push(c);
  });
  const enc = (CRYPTO_MIB * 1048576) / MB / ((performance.now() - t) / 1000);
  t = performance.now();
  let n = 0;
  await pipeline(Readable.from(sealed), decryptStream(key, aad), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) n += c.length;
  });
  const dec = n / MB / ((performance.now() - t) / 1000);
  if (n !== CRYPTO_MIB * 1048576) throw new Error('decrypt returned a different length');
  return { enc, dec };
}

async function main(): Promise<void> {
  console.log(`storage-backup bench: database ~${SIZE_MIB} MiB, crypto ${CRYPTO_MIB} MiB in memory`);
  const c = await cryptoThroughput();
  console.log(`aead stream (AES-256-GCM, 1 MiB chunks, one core): encrypt ${fixed(c.enc, 0)} MB/s, decrypt ${fixed(c.dec, 0)} MB/s`);

  const root = mkdtempSync('/tmp/pgw-bkbench-');
  chmodSync(root, 0o711);
  onCleanup('temp dir', () => rmSync(root, { recursive: true, force: true }));
  const account = serviceAccount();
  const repo = new DirectoryRepository(path.join(root, 'repo'));
  const kek = new TestKek();
  const socketPath = path.join(root, 'agent', 's.sock');
  const agent = await startArchiveAgent({ socketPath, owner: account, repo, serverId: 'bench', kek });
  onCleanup('archive agent', () => agent.close());
  mkdirSync(path.join(root, 'src'), { mode: 0o711 });
  mkdirSync(path.join(root, 'run'), { mode: 0o711 });
  const cluster = new Cluster({
    dataDir: path.join(root, 'src', 'data'),
    socketDir: path.join(root, 'run', 'src'),
    account,
    settings: { ...walArchiveSettings({ socketPath }), max_wal_size: '2GB', checkpoint_timeout: '15min' },
  });
  await cluster.init(USER, PASSWORD);
  appendFileSync(path.join(root, 'src', 'data', 'pg_hba.conf'), `${replicationHbaLine(USER)}\n`);
  await cluster.start();
  onCleanup('source server', () => cluster.stop());
  const client = new pg.Client({ host: cluster.socketDir, user: USER, password: PASSWORD, database: 'postgres' });
  await client.connect();
  onCleanup('client', () => client.end().catch(() => undefined));

  // ~1 KB rows of hex (below the TOAST threshold, so stored uncompressed): ~7 rows per 8 KiB page.
  const rows = Math.ceil((SIZE_MIB * 1048576) / 1170);
  const batch = 100_000;
  await client.query(`create table big (id bigint, payload text)`);
  const tLoad = performance.now();
  for (let start = 1; start <= rows; start += batch) {
    const end = Math.min(rows, start + batch - 1);
    await client.query(`insert into big select g, repeat(md5(g::text), 32) from generate_series(${start}, ${end}) g`);
    process.stderr.write(`\rgenerating: ${end} of ${rows} rows\x1b[K`);
  }
  await client.query('checkpoint');
  const sw = await client.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f');
  while (!(await repo.stat(walObjectKey('bench', sw.rows[0]!.f)))) await new Promise((r) => setTimeout(r, 200));
  const dbBytes = Number((await client.query<{ s: string }>('select pg_database_size(current_database())::text as s')).rows[0]!.s);
  process.stderr.write('\n');
  console.log(
    `generated ${rows} rows, database ${fixed(dbBytes / 1048576, 0)} MiB in ${fixed((performance.now() - tLoad) / 1000, 1)} s (WAL archived encrypted meanwhile)`,
  );

  const tb = performance.now();
  const manifest = await createBaseBackup({
    socketDir: cluster.socketDir,
    user: USER,
    password: PASSWORD,
    repo,
    serverId: 'bench',
    kek,
    onProgress: progressLine('backup'),
  });
  const backupS = (performance.now() - tb) / 1000;
  await client.query(`insert into big values (0, 'after the backup')`);
  const sw2 = await client.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f');
  while (!(await repo.stat(walObjectKey('bench', sw2.rows[0]!.f)))) await new Promise((r) => setTimeout(r, 100));

  const target = path.join(root, 'restored', 'data');
  const tr = await (async () => {
    const t = performance.now();
    const r = await restoreToPointInTime({ repo, sourceServerId: 'bench', targetDataDir: target, owner: account, kek, onProgress: progressLine('restore') });
    return { r, s: (performance.now() - t) / 1000 };
  })();
  const restored = new Cluster({ dataDir: target, socketDir: path.join(root, 'run', 'new'), account });
  restored.writeConfig();
  await restored.start();
  onCleanup('restored server', () => restored.stop());
  const rc = new pg.Client({ host: restored.socketDir, user: USER, password: PASSWORD, database: 'postgres' });
  await rc.connect();
  const count = Number((await rc.query<{ n: string }>('select count(*)::text as n from big')).rows[0]!.n);
  await rc.end();
  if (count !== rows + 1) throw new Error(`restored server holds ${count} rows, expected ${rows + 1}`);

  const tarMiB = manifest.plaintextBytes / 1048576;
  console.log(
    table(
      ['step', 'seconds', 'MiB (tar)', 'MB/s', 'notes'],
      [
        [
          'backup',
          fixed(backupS, 1),
          fixed(tarMiB, 0),
          fixed(manifest.plaintextBytes / MB / backupS, 0),
          `ciphertext ${fixed(manifest.ciphertextBytes / 1048576, 0)} MiB`,
        ],
        [
          'restore',
          fixed(tr.s, 1),
          fixed(tarMiB, 0),
          fixed(manifest.plaintextBytes / MB / tr.s, 0),
          `${tr.r.walFilesRestored} WAL files replayed; ${count} rows checked`,
        ],
      ],
    ),
  );
  console.log(
    `storage-backup size_mib=${fixed(tarMiB, 0)} backup_s=${fixed(backupS, 1)} restore_s=${fixed(tr.s, 1)} encrypt_MBps=${fixed(c.enc, 0)} decrypt_MBps=${fixed(c.dec, 0)}`,
  );
}

void runBench(main);
