// The in-process fuzz loop, in a worker thread so the main thread can watch it: each input is
// copied into shared memory before it runs and a progress counter is bumped after, so a hang
// (an input that never returns) is caught by the watchdog with the input that caused it.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Rng } from './rng.js';
import { mutate } from './mutate.js';
import { InvariantViolation, targets, type FuzzTarget } from './targets.js';
import type { FindingReport, TargetStats, WorkerInput, WorkerResult } from './protocol.js';
import { SHARED_HEADER_INTS } from './protocol.js';

const input = workerData as WorkerInput;
const header = new Int32Array(input.shared, 0, SHARED_HEADER_INTS);
const area = new Uint8Array(input.shared, SHARED_HEADER_INTS * 4);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function timeAlone(target: FuzzTarget, buf: Buffer, runSeed: number): number {
  const times: number[] = [];
  for (let k = 0; k < 20; k++) {
    const t0 = performance.now();
    try {
      target.run(buf, new Rng(runSeed));
    } catch {
      /* counted already */
    }
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[10]!;
}

const rng = new Rng(input.seed);
const list = targets(rng);
const findings: FindingReport[] = [];
const stats: TargetStats[] = [];
const heapBefore = heapAfterGc();
let done = 0;
const started = performance.now();

for (let ti = 0; ti < list.length; ti++) {
  const target = list[ti]!;
  const n = ti === list.length - 1 ? input.inputs - done : Math.round(input.inputs * target.weight);
  const pool = [...target.seeds];
  const s: TargetStats = {
    name: target.name,
    inputs: 0,
    accepted: 0,
    typedErrors: 0,
    crashes: 0,
    invariants: 0,
    slow: 0,
    maxMs: 0,
    totalMs: 0,
    maxInputBytes: 0,
    slowestAloneMs: 0,
  };
  let slowest: { buf: Buffer; runSeed: number } | null = null;
  header[1] = ti;
  for (let i = 0; i < n; i++) {
    if ((i & 1023) === 0) pool[rng.int(pool.length)] = target.generate(rng);
    const buf = rng.chance(0.2) ? target.generate(rng) : mutate(rng.pick(pool), rng, pool, target.maxBytes);
    const runSeed = rng.u32();
    // For the watchdog: the input about to run.
    area.set(buf.subarray(0, area.length));
    header[2] = buf.length;
    header[3] = runSeed | 0;
    const t0 = performance.now();
    try {
      target.run(buf, new Rng(runSeed));
      s.accepted++;
    } catch (err) {
      if (target.typed(err)) s.typedErrors++;
      else {
        const invariantBroken = err instanceof InvariantViolation;
        if (invariantBroken) s.invariants++;
        else s.crashes++;
        if (findings.length < 50) {
          const e = err as Error;
          findings.push({
            target: target.name,
            kind: invariantBroken ? 'invariant' : 'crash',
            error: `${e?.name ?? typeof err}: ${e?.message ?? String(err)}`,
            stack: String(e?.stack ?? '')
              .split('\n')
              .slice(0, 6)
              .join('\n'),
            inputHex: buf.toString('hex'),
            runSeed,
          });
        }
      }
    }
    const ms = performance.now() - t0;
    s.inputs++;
    s.totalMs += ms;
    if (ms > s.maxMs) {
      s.maxMs = ms;
      slowest = { buf, runSeed };
    }
    if (ms > input.budgetMs) s.slow++;
    if (buf.length > s.maxInputBytes) s.maxInputBytes = buf.length;
    Atomics.add(header, 0, 1);
  }
  if (slowest) s.slowestAloneMs = timeAlone(target, slowest.buf, slowest.runSeed);
  done += s.inputs;
  stats.push(s);
}

const result: WorkerResult = { stats, findings, heapBefore, heapAfter: heapAfterGc(), elapsedMs: performance.now() - started };
parentPort!.postMessage(result);
