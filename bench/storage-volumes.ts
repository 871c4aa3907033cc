// Encrypted-volume benchmark: the same PostgreSQL cluster (the pgwarden service account, Unix
// socket) on a plain directory, on an fscrypt volume and on a gocryptfs volume (16 GiB, as a
// server's), all set up first and then measured in turns over --rounds (default 3; order
// rotating, every cluster checkpointed before each run): the bulk load (pgbench -i -s 10, timed),
// TPC-B for --seconds (default 20) with 4 clients, then select-only (cached: the database fits in
// memory) for --seconds. Medians, and the range over rounds.
// --variants adds the configurations weighed when the defaults were chosen (fscrypt with buffered
// loop I/O as before, journal sizes; gocryptfs mount options); --targets 'a;b' keeps only those.
// Then the WAL archive: a server on an fscrypt volume archiving through the archive agent (the
// archive module, and with --archive-command also archive_command as before): pgbench -c 8 TPC-B
// for --archive-seconds (default 60) with the segments waiting (.ready) sampled every 5 s and
// the segments written and archived; then the archiver's own throughput: the agent stopped,
// --drain-segments (default 30) segments switched, the agent started again, the time until all
// are archived. Not a timed test, gates nothing; on a shared 2-core machine the numbers are noisy.
// Last line: `ratio fscrypt/plain=X gocryptfs/plain=Y` (TPC-B).
// Run: npx tsc -p . && node dist/bench/storage-volumes.js [--seconds 20] [--rounds 3] [--scale 10]
//      [--variants] [--targets 'plain;fscrypt'] [--archive-seconds 60] [--archive-command] [--drain-segments 30]
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { Cluster } from '../src/engine/cluster.js';
import { serviceAccount } from '../src/host/os-user.js';
import { findPgBinaries } from '../src/host/pg-binaries.js';
import { archiveModuleAvailable } from '../src/engine/server-libraries.js';
import { FscryptBackend } from '../src/storage/volumes/fscrypt.js';
import { GocryptfsBackend, type GocryptfsTuning } from '../src/storage/volumes/gocryptfs.js';
import type { VolumeBackend, VolumeSpec } from '../src/storage/volumes/volume.js';
import { DirectoryRepository } from '../src/storage/backup/repository.js';
import { startArchiveAgent, walArchiveSettings, type ArchiveAgent } from '../src/storage/backup/wal-archive.js';
import { TestKek } from '../support/test-kek.js';
import { onCleanup, runBench } from './lib/cleanup.js';
import { fixed, table } from './lib/format.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number ≥ 0`);
  return v;
}

const SECONDS = arg('seconds', 20);
const SCALE = arg('scale', 10);
const ARCHIVE_SECONDS = arg('archive-seconds', 60);
const DRAIN_SEGMENTS = arg('drain-segments', 30);
const ROUNDS = arg('rounds', 3);
const VARIANTS = process.argv.includes('--variants');
const ONLY = (() => {
  const i = process.argv.indexOf('--targets');
  return i >= 0 ? (process.argv[i + 1] ?? '').split(';') : null;
})();
const ARCHIVE_COMMAND = process.argv.includes('--archive-command');
const CLIENTS = 4;
const USER = 'pgw_maint';
const PASSWORD = `Bench-${randomBytes(8).toString('hex')}!`;
const SEGMENT = 16 * 1024 * 1024;

interface Target {
  readonly label: string;
  readonly backend: VolumeBackend | null;
}

function targets(): Target[] {
  const list: Target[] = [
    { label: 'plain', backend: null },
    { label: 'fscrypt', backend: new FscryptBackend() },
    { label: 'gocryptfs', backend: new GocryptfsBackend() },
  ];
  if (!VARIANTS) return list;
  const fs = (label: string, directIo: boolean, journalMiB: number): Target => ({ label, backend: new FscryptBackend({ directIo, journalMiB }) });
  const gc = (tuning: GocryptfsTuning[]): Target => ({ label: `gocryptfs[${tuning.join(',') || 'none'}]`, backend: new GocryptfsBackend({ tuning }) });
  return [
    ...list,
    fs('fscrypt[buffered,j32]', false, 32), // as before
    fs('fscrypt[direct,j32]', true, 32),
    fs('fscrypt[direct,j128]', true, 128),
    gc([]), // as before
    gc(['noprealloc']),
    gc(['kernel_cache']),
    gc(['serialize_reads']),
    gc(['sharedstorage']),
  ];
}

function pgbench(socketDir: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(findPgBinaries().dir, 'pgbench'), args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', PGHOST: socketDir, PGUSER: USER, PGPASSWORD: PASSWORD, PGDATABASE: 'postgres' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`pgbench ${args.join(' ')} failed (${code}): ${out.trim().slice(-1500)}`));
    });
  });
}

function tpsOf(out: string): number {
  const m = /^tps = ([\d.]+)/m.exec(out);
  if (!m) throw new Error(`cannot parse pgbench output:\n${out}`);
  return Number(m[1]);
}

interface Prepared {
  readonly label: string;
  readonly socketDir: string;
  readonly cluster: Cluster;
  readonly init: number[];
  readonly tpcb: number[];
  readonly select: number[];
}
interface Result {
  readonly label: string;
  readonly initSeconds: number;
  readonly tpcbTps: number;
  readonly selectOnlyTps: number;
  readonly spread: string;
}
type Outcome = Result | { readonly label: string; readonly skipped: string };

const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A volume (or a plain directory) with its data directory's parent; undone by the cleanup stack. */
async function makeVolume(t: Target, base: string): Promise<{ dataParent: string; release: () => Promise<void> } | { skipped: string }> {
  const account = serviceAccount();
  mkdirSync(base, { mode: 0o711 });
  if (!t.backend) {
    const dataParent = path.join(base, 'plain');
    mkdirSync(dataParent, { mode: 0o711 });
    return { dataParent, release: async () => undefined };
  }
  const backend = t.backend;
  const probe = await backend.probe();
  if (!probe.ok) return { skipped: probe.reason };
  const spec: VolumeSpec = { id: 'bench', stateDir: path.join(base, 'state'), mountPoint: path.join(base, 'mnt'), sizeBytes: 16 * 1024 ** 3, owner: account };
  const key = randomBytes(backend.keyBytes);
  try {
    await backend.create(spec, key);
  } finally {
    key.fill(0);
  }
  const undo = onCleanup(`${t.label} volume`, () => backend.destroy(spec));
  return {
    dataParent: path.join(spec.mountPoint, 'data'),
    release: async () => {
      await backend.destroy(spec);
      undo();
    },
  };
}

/** Every target gets its volume and a running cluster; they are then measured in turns. */
async function prepare(t: Target, root: string, n: number): Promise<Prepared | { label: string; skipped: string }> {
  const base = path.join(root, `t${n}`);
  const vol = await makeVolume(t, base);
  if ('skipped' in vol) return { label: t.label, skipped: vol.skipped };
  const socketDir = path.join(base, 'sock');
  const cluster = new Cluster({ dataDir: path.join(vol.dataParent, 'pg'), socketDir, account: serviceAccount() });
  await cluster.init(USER, PASSWORD);
  await cluster.start();
  onCleanup(`${t.label} postgres`, () => cluster.stop()); // before the volume's release (stack order)
  return { label: t.label, socketDir, cluster, init: [], tpcb: [], select: [] };
}

async function checkpoint(p: Prepared): Promise<void> {
  const c = new pg.Client({ host: p.socketDir, user: USER, password: PASSWORD, database: 'postgres' });
  await c.connect();
  try {
    await c.query('checkpoint');
  } finally {
    await c.end();
  }
}

/** Rounds; in each, every target in turn (order rotating): the bulk load (pgbench -i, which
 * re-creates the tables), then TPC-B, then select-only. Every target's dirty pages are
 * checkpointed before each run, so no run pays for another's writes. */
async function measureAll(list: Prepared[]): Promise<void> {
  const limit = (SECONDS + 60) * 1000;
  for (let round = 0; round < ROUNDS; round++) {
    const order = list.map((_, i) => list[(i + round) % list.length]!);
    const turn = async (label: string, fn: (p: Prepared) => Promise<void>) => {
      for (const p of order) {
        for (const q of list) await checkpoint(q);
        console.error(`  round ${round + 1}/${ROUNDS} ${label} ${p.label}`);
        await fn(p);
      }
    };
    await turn('bulk load', async (p) => {
      const started = performance.now();
      await pgbench(p.socketDir, ['-i', '-q', '-s', String(SCALE)], 300_000);
      p.init.push((performance.now() - started) / 1000);
    });
    await turn('TPC-B', async (p) => {
      p.tpcb.push(tpsOf(await pgbench(p.socketDir, ['-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-n'], limit)));
    });
    await turn('select-only', async (p) => {
      p.select.push(tpsOf(await pgbench(p.socketDir, ['-S', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-n'], limit)));
    });
  }
}

const spreadOf = (v: readonly number[]) => (v.length > 1 ? `${fixed(Math.min(...v), 0)}–${fixed(Math.max(...v), 0)}` : '');

interface ArchiveRun {
  readonly how: string;
  readonly seconds: number;
  readonly tps: number;
  readonly written: number;
  readonly archived: number;
  readonly readyAtEnd: number;
  readonly readyMax: number;
  readonly drained: number;
  readonly drainSeconds: number;
}

/** A server on an fscrypt volume archiving through its agent; see the header. */
async function archiveRun(root: string, n: number, module: boolean): Promise<ArchiveRun | { how: string; skipped: string }> {
  const how = module ? 'archive module' : 'archive_command';
  const base = path.join(root, `a${n}`);
  const vol = await makeVolume({ label: 'fscrypt', backend: new FscryptBackend() }, base);
  if ('skipped' in vol) return { how, skipped: vol.skipped };
  const account = serviceAccount();
  const repo = new DirectoryRepository(path.join(base, 'repo'));
  const socketPath = path.join(base, 'agent', 's.sock');
  const kek = new TestKek();
  let agent: ArchiveAgent | null = null;
  const startAgent = async () => {
    agent = await startArchiveAgent({ socketPath, owner: account, repo, serverId: 'bench', kek });
  };
  await startAgent();
  const undoAgent = onCleanup('archive agent', () => agent?.close());
  const dataDir = path.join(vol.dataParent, 'pg');
  const socketDir = path.join(base, 'sock');
  const cluster = new Cluster({
    dataDir,
    socketDir,
    account,
    settings: { ...walArchiveSettings({ socketPath, archiveLibrary: module }), max_wal_size: '1GB' },
  });
  await cluster.init(USER, PASSWORD);
  await cluster.start();
  const stopCluster = onCleanup('archive postgres', () => cluster.stop());
  const client = new pg.Client({ host: socketDir, user: USER, password: PASSWORD, database: 'postgres' });
  await client.connect();
  const lsnSegment = async () => {
    const { rows } = await client.query<{ b: string }>(`select (pg_current_wal_lsn() - '0/0'::pg_lsn)::text as b`);
    return Math.floor(Number(rows[0]!.b) / SEGMENT);
  };
  const archivedCount = async () => Number((await client.query<{ n: string }>('select archived_count::text as n from pg_stat_archiver')).rows[0]!.n);
  const ready = () => readdirSync(path.join(dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready')).length;
  try {
    await pgbench(socketDir, ['-i', '-q', '-s', String(SCALE)], 300_000);
    await client.query('checkpoint');
    const seg0 = await lsnSegment();
    const arch0 = await archivedCount();
    let readyMax = 0;
    const sampler = setInterval(() => {
      readyMax = Math.max(readyMax, ready());
    }, 5000);
    let tps: number;
    try {
      tps = tpsOf(await pgbench(socketDir, ['-c', '8', '-j', '2', '-T', String(ARCHIVE_SECONDS), '-n'], (ARCHIVE_SECONDS + 60) * 1000));
    } finally {
      clearInterval(sampler);
    }
    const readyAtEnd = ready();
    readyMax = Math.max(readyMax, readyAtEnd);
    const written = (await lsnSegment()) - seg0;
    const archived = (await archivedCount()) - arch0;

    // Drain: segments pile up while the agent is away, then the archiver empties the backlog.
    let drained = 0;
    let drainSeconds = 0;
    if (DRAIN_SEGMENTS > 0) {
      await agent!.close();
      agent = null;
      await client.query('create table if not exists drain (i int)');
      for (let i = 0; i < DRAIN_SEGMENTS; i++) {
        await client.query('insert into drain values (1)');
        await client.query('select pg_switch_wal()');
      }
      const before = await archivedCount();
      const backlog = ready();
      await startAgent();
      const t0 = performance.now();
      await client.query('insert into drain values (1)');
      await client.query('select pg_switch_wal()'); // wakes the archiver (it waits after failures)
      const deadline = Date.now() + 300_000;
      while (ready() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      drainSeconds = (performance.now() - t0) / 1000;
      drained = (await archivedCount()) - before;
      if (ready() > 0) throw new Error(`the archive backlog did not drain within 300 s (${ready()} of ${backlog + 1} left)`);
    }
    return { how, seconds: ARCHIVE_SECONDS, tps, written, archived, readyAtEnd, readyMax, drained, drainSeconds };
  } finally {
    await client.end().catch(() => undefined);
    await cluster.stop();
    stopCluster();
    await (agent as ArchiveAgent | null)?.close();
    undoAgent();
    await vol.release();
    rmSync(base, { recursive: true, force: true });
  }
}

/** Which implementation the kernel's crypto API uses for fscrypt's contents mode. */
function kernelCipher(): string {
  try {
    const blocks = readFileSync('/proc/crypto', 'utf8').split('\n\n');
    const xts = blocks
      .filter((b) => /^name\s+: xts\(aes\)$/m.test(b))
      .map((b) => ({ driver: /^driver\s+: (.*)$/m.exec(b)?.[1] ?? '?', priority: Number(/^priority\s+: (\d+)$/m.exec(b)?.[1] ?? 0) }))
      .sort((a, b) => b.priority - a.priority)[0];
    if (!xts) return 'not loaded yet';
    return `${xts.driver}${/aesni|vaes|aes-ce|neonbs/.test(xts.driver) ? ' (hardware AES)' : ' (software AES: no AES-NI driver in this kernel, the cipher bounds fscrypt)'}`;
  } catch {
    return 'unknown (/proc/crypto unreadable)';
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync('/var/tmp/pgw-volbench-');
  chmodSync(root, 0o711);
  onCleanup('temp dir', () => rmSync(root, { recursive: true, force: true }));
  const list = targets().filter((t) => ONLY === null || ONLY.includes(t.label));
  if (!list.some((t) => t.label === 'plain')) list.unshift({ label: 'plain', backend: null });
  console.error(
    `storage-volumes bench: scale ${SCALE}, ${CLIENTS} clients, ${SECONDS} s per run, ${ROUNDS} rounds; targets ${list.map((t) => t.label).join(', ')}`,
  );
  const prepared: (Prepared | { label: string; skipped: string })[] = [];
  for (const [i, t] of list.entries()) prepared.push(await prepare(t, root, i));
  const running = prepared.filter((p): p is Prepared => 'cluster' in p);
  await measureAll(running);
  const results: Outcome[] = prepared.map((p) =>
    'skipped' in p
      ? p
      : {
          label: p.label,
          initSeconds: median(p.init),
          tpcbTps: median(p.tpcb),
          selectOnlyTps: median(p.select),
          spread: `TPC-B ${spreadOf(p.tpcb)}, select ${spreadOf(p.select)}`,
        },
  );
  for (const p of running) await p.cluster.stop();
  console.log(`kernel xts(aes) (fscrypt contents): ${kernelCipher()}`);
  const plain = results.find((r): r is Result => r.label === 'plain' && 'tpcbTps' in r)!;
  const rows = results.map((r) =>
    'skipped' in r
      ? [r.label, 'skipped', r.skipped, '', '', '', '', '']
      : [
          r.label,
          fixed(r.initSeconds, 1),
          fixed(r.tpcbTps, 0),
          fixed(r.selectOnlyTps, 0),
          fixed(r.initSeconds / plain.initSeconds, 2),
          fixed(r.tpcbTps / plain.tpcbTps, 3),
          fixed(r.selectOnlyTps / plain.selectOnlyTps, 3),
          r.spread,
        ],
  );
  console.log(`pgbench scale ${SCALE}, ${CLIENTS} clients, ${SECONDS} s per run, median of ${ROUNDS} rounds (targets in turns)`);
  console.log(table(['target', 'init s', 'TPC-B tps', 'select tps', 'init ×plain', 'TPC-B /plain', 'select /plain', 'range over rounds'], rows));
  const got = (label: string) => results.find((r): r is Result => r.label === label && 'tpcbTps' in r);
  const fs = got('fscrypt');
  const gc = got('gocryptfs');
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  if (fs) {
    console.log(
      `goals fscrypt: TPC-B ≥ 0.95 ${mark(fs.tpcbTps / plain.tpcbTps >= 0.95)} (≥ 0.9 ${mark(fs.tpcbTps / plain.tpcbTps >= 0.9)}), ` +
        `select-only ≥ 0.98 ${mark(fs.selectOnlyTps / plain.selectOnlyTps >= 0.98)}, bulk load ≤ 1.2× ${mark(fs.initSeconds / plain.initSeconds <= 1.2)}`,
    );
  }
  if (gc) console.log(`goals gocryptfs: TPC-B ≥ 0.7 ${mark(gc.tpcbTps / plain.tpcbTps >= 0.7)}`);

  if (ARCHIVE_SECONDS > 0) {
    const modes = [
      ...(archiveModuleAvailable(findPgBinaries()) ? [true] : []),
      ...(ARCHIVE_COMMAND || !archiveModuleAvailable(findPgBinaries()) ? [false] : []),
    ];
    for (const [i, module] of modes.entries()) {
      console.error(`  WAL archive (${module ? 'archive module' : 'archive_command'}), ${ARCHIVE_SECONDS} s...`);
      const a = await archiveRun(root, i, module);
      if ('skipped' in a) {
        console.log(`wal archive (${a.how}): skipped: ${a.skipped}`);
        continue;
      }
      console.log(
        `wal archive (${a.how}, fscrypt, pgbench -c 8 TPC-B ${a.seconds} s, ${fixed(a.tps, 0)} tps): segments written ${a.written}, archived ${a.archived}, ` +
          `waiting at end ${a.readyAtEnd} (most at a 5 s sample ${a.readyMax}); keeps up: ${a.readyMax <= 2 ? 'met' : 'MISSED'}`,
      );
      if (a.drained > 0) {
        console.log(
          `wal archive (${a.how}) drain: ${a.drained} segments in ${fixed(a.drainSeconds, 1)} s = ${fixed(a.drained / a.drainSeconds, 1)} segments/s (${fixed((a.drained * 16) / a.drainSeconds, 0)} MiB/s)`,
        );
      }
    }
  }
  const ratio = (r: Result | undefined) => (r ? fixed(r.tpcbTps / plain.tpcbTps, 2) : 'skipped');
  console.log(`ratio fscrypt/plain=${ratio(fs)} gocryptfs/plain=${ratio(gc)}`);
}

await runBench(main);
