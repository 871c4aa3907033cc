// Encrypted-volume benchmark: the same PostgreSQL cluster (OS user pgwarden, Unix socket) on a
// plain directory, on an fscrypt volume and on a gocryptfs volume, one after the other in one
// run: pgbench -i -s 10 (timed), TPC-B for --seconds (default 20) with 4 clients, then
// select-only for --seconds with 4 clients. Prints one JSON object: tps per target and ratios vs
// plain. Not a timed test, gates nothing; on a shared 2-core machine the numbers are noisy.
// A backend whose probe fails is reported as skipped. Bounded: ~3 x (init + 2 x seconds).
// Run: npx tsc -p . && node dist/bench/storage-volumes.js [--seconds 20] [--scale 10]
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Cluster } from '../src/engine/cluster.js';
import { serviceAccount } from '../src/engine/os-user.js';
import { findPgBinaries } from '../src/engine/pg-binaries.js';
import { volumeBackend, type BackendName, type VolumeSpec } from '../src/storage/volumes/volume.js';
import { onCleanup, runBench } from './lib/cleanup.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const SECONDS = arg('seconds', 20);
const SCALE = arg('scale', 10);
const CLIENTS = 4;
const USER = 'pgw_maint';
const PASSWORD = `Bench-${randomBytes(8).toString('hex')}!`;

function pgbenchBin(): string {
  return path.join(findPgBinaries().dir, 'pgbench');
}

function pgbench(socketDir: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(pgbenchBin(), args, {
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

interface Result {
  target: string;
  initSeconds: number;
  tpcbTps: number;
  selectOnlyTps: number;
}

async function measure(target: 'plain' | BackendName, root: string): Promise<Result | { target: string; skipped: string }> {
  const account = serviceAccount();
  const base = path.join(root, target);
  mkdirSync(base, { mode: 0o711 });
  let dataParent = path.join(base, 'plain');
  let spec: VolumeSpec | null = null;
  if (target !== 'plain') {
    const backend = volumeBackend(target);
    const probe = await backend.probe();
    if (!probe.ok) return { target, skipped: probe.reason };
    spec = { id: `bench-${target}`, stateDir: path.join(base, 'state'), mountPoint: path.join(base, 'mnt'), sizeBytes: 2 * 1024 ** 3, owner: account };
    const key = randomBytes(backend.keyBytes);
    try {
      await backend.create(spec, key);
    } finally {
      key.fill(0);
    }
    const s = spec;
    onCleanup(`${target} volume`, () => backend.destroy(s));
    dataParent = path.join(spec.mountPoint, 'data');
  } else {
    mkdirSync(dataParent, { mode: 0o711 });
  }
  const socketDir = path.join(base, 'sock');
  const cluster = new Cluster({ dataDir: path.join(dataParent, 'pg'), socketDir, account });
  await cluster.init(USER, PASSWORD);
  await cluster.start();
  const stopCluster = onCleanup(`${target} postgres`, () => cluster.stop());
  try {
    const t = performance.now();
    await pgbench(socketDir, ['-i', '-q', '-s', String(SCALE)], 300_000);
    const initSeconds = (performance.now() - t) / 1000;
    const limit = (SECONDS + 60) * 1000;
    const tpcbTps = tpsOf(await pgbench(socketDir, ['-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-n'], limit));
    const selectOnlyTps = tpsOf(await pgbench(socketDir, ['-S', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-n'], limit));
    return { target, initSeconds: Number(initSeconds.toFixed(2)), tpcbTps: Number(tpcbTps.toFixed(1)), selectOnlyTps: Number(selectOnlyTps.toFixed(1)) };
  } finally {
    await cluster.stop();
    stopCluster();
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync('/tmp/pgw-volbench-');
  chmodSync(root, 0o711);
  onCleanup('temp dir', () => rmSync(root, { recursive: true, force: true }));
  console.error(`storage-volumes bench: scale ${SCALE}, ${CLIENTS} clients, ${SECONDS} s per run; targets plain, fscrypt, gocryptfs`);
  const results: (Result | { target: string; skipped: string })[] = [];
  for (const target of ['plain', 'fscrypt', 'gocryptfs'] as const) {
    console.error(`  ${target}...`);
    results.push(await measure(target, root));
  }
  const plain = results.find((r): r is Result => r.target === 'plain' && 'tpcbTps' in r)!;
  const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
  const ratios = Object.fromEntries(
    results
      .filter((r): r is Result => 'tpcbTps' in r && r.target !== 'plain')
      .map((r) => [r.target, { tpcb: ratio(r.tpcbTps, plain.tpcbTps), selectOnly: ratio(r.selectOnlyTps, plain.selectOnlyTps), init: ratio(r.initSeconds, plain.initSeconds) }]),
  );
  console.log(JSON.stringify({ bench: 'storage-volumes', scale: SCALE, clients: CLIENTS, seconds: SECONDS, results, ratiosVsPlain: ratios, note: 'shared 2-core machine: noisy' }, null, 2));
}

await runBench(main);
