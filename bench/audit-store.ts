// Audit store benchmark: records per second the store sustains with checkpoints on (every 1,000
// records / 5 s, Ed25519-signed), for strict durability (append resolves after fdatasync, group
// commit) and batched (after write; fdatasync every 200 ms), at 1, 64 and 1,024 concurrent
// appenders (sessions), with ~300-byte events; the writer in its worker thread, as the platform
// runs it. Per run also the CPU of the appending thread (the event loop) per record: what
// recording costs the caller, the rest (canonical JSON, hashing, writes) being the writer's.
// Then the verify rate over the largest store.
// Run: npx tsc -p . && node dist/bench/audit-store.js   (about 20 s; not a timed test, gates nothing)
// Data goes to a temp dir on the file system of os.tmpdir() (set TMPDIR to bench another disk).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { canonicalJson } from '../src/audit/store/canonical-json.js';
import { openAuditStore } from '../src/audit/store/open-store.js';
import type { AuditStore } from '../src/audit/store/store.js';
import { verifyStore } from '../src/audit/store/verify.js';
import { onCleanup, runBench } from './lib/cleanup.js';
import { fixed, table } from './lib/format.js';
import { processCpuMs, threadCpuMs } from './lib/proc-cpu.js';

const SECONDS_PER_RUN = Number(process.env.AUDIT_BENCH_SECONDS ?? 2.4);
const runs = [
  { durability: 'strict', sessions: 1 },
  { durability: 'strict', sessions: 64 },
  { durability: 'strict', sessions: 1024 },
  { durability: 'batched', sessions: 1 },
  { durability: 'batched', sessions: 64 },
  { durability: 'batched', sessions: 1024 },
] as const;

/** A statement event of about 300 bytes in canonical form. */
function event(i: number): Record<string, unknown> {
  return {
    type: 'statement',
    time: new Date().toISOString(),
    server: 'orders-prod',
    database: 'app',
    user: 'app_rw',
    connection: { connId: `g1-${i % 997}`, clientAddress: '10.20.30.40', clientPort: 50000 + (i % 10000), listener: 'public' },
    statement: { class: 'READ', tag: 'SELECT', objects: ['public.orders'], rows: i % 50, durationUs: 180 + (i % 90) },
    outcome: 'success',
  };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(
  root: string,
  durability: 'strict' | 'batched',
  sessions: number,
): Promise<{ row: string[]; dir: string; records: number; publicKey: AuditStore['publicKey'] }> {
  const dir = path.join(root, `${durability}-${sessions}`);
  const store = await openAuditStore({ dir, keyFile: path.join(root, 'audit-signing.pem'), durability });
  // warm-up, outside the timing
  await Promise.all(Array.from({ length: 200 }, (_, i) => store.append(event(i))));
  const before = store.stats();
  const cpu0 = { main: threadCpuMs(process.pid), all: processCpuMs(process.pid) };
  const latencies: number[] = [];
  let stop = false;
  let n = 0;
  const t0 = process.hrtime.bigint();
  const session = async (): Promise<void> => {
    while (!stop) {
      const s = process.hrtime.bigint();
      await store.append(event(n++));
      latencies.push(Number(process.hrtime.bigint() - s) / 1000);
    }
  };
  const timer = setTimeout(() => (stop = true), SECONDS_PER_RUN * 1000);
  await Promise.all(Array.from({ length: sessions }, session));
  clearTimeout(timer);
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = store.stats();
  const cpu = { main: threadCpuMs(process.pid) - cpu0.main, all: processCpuMs(process.pid) - cpu0.all };
  await store.close();
  const records = after.appended - before.appended;
  const sorted = Float64Array.from(latencies).sort();
  const bytes = Buffer.byteLength(canonicalJson(event(1))) + 200; // + seq, time, prev, hash
  return {
    dir,
    records: after.lastSeq,
    publicKey: store.publicKey,
    row: [
      durability,
      String(sessions),
      fixed(records / elapsed, 0),
      fixed((records * bytes) / elapsed / 1e6, 1),
      fixed(records / (after.writes - before.writes), 1),
      fixed((after.syncs - before.syncs) / elapsed, 0),
      String(after.checkpoints - before.checkpoints),
      fixed(percentile(sorted, 50), 0),
      fixed(percentile(sorted, 99), 0),
      fixed((1000 * cpu.main) / records, 1),
      fixed((1000 * (cpu.all - cpu.main)) / records, 1),
    ],
  };
}

await runBench(async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pgwarden-bench-audit-'));
  onCleanup('audit bench dir', () => rm(root, { recursive: true, force: true }));
  console.log(
    `audit store: ${SECONDS_PER_RUN} s per run, event ${Buffer.byteLength(canonicalJson(event(1)))} bytes canonical, checkpoint every 1000 records / 5 s, dir ${root}\n`,
  );
  const rows: string[][] = [];
  let largest: { dir: string; records: number; publicKey: AuditStore['publicKey'] } | undefined;
  for (const r of runs) {
    const result = await run(root, r.durability, r.sessions);
    rows.push(result.row);
    if (!largest || result.records > largest.records) largest = result;
  }
  console.log(
    table(
      [
        'durability',
        'sessions',
        'records/s',
        'MB/s',
        'records/write',
        'fdatasync/s',
        'checkpoints',
        'p50 µs',
        'p99 µs',
        'event loop CPU µs/rec',
        'other threads µs/rec',
      ],
      rows,
    ),
  );
  console.log(
    "(CPU from /proc, 10 ms ticks; the event loop also runs this benchmark's own appenders. fdatasync/s from the store's stats: segment and checkpoint files.)",
  );
  const t0 = process.hrtime.bigint();
  const report = await verifyStore(largest!.dir, { publicKey: largest!.publicKey });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    `\nverify: ${report.records} records, ${report.checkpoints} checkpoints in ${s.toFixed(2)} s = ${fixed(report.records / s, 0)} records/s (ok=${report.ok})`,
  );
  const strictBest = Math.max(...rows.filter((r) => r[0] === 'strict').map((r) => Number(r[2])));
  const batchedBest = Math.max(...rows.filter((r) => r[0] === 'batched').map((r) => Number(r[2])));
  console.log(`audit-store strict_rps=${strictBest} batched_rps=${batchedBest} verify_rps=${fixed(report.records / s, 0)}`);
});
