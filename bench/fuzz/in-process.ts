// Phase 1: the in-process campaign in a worker thread, watched by the main thread (progress,
// hangs, RSS).
import { Worker } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SHARED_HEADER_INTS, SHARED_INPUT_BYTES, type WorkerInput, type WorkerResult } from './protocol.js';

export interface InProcessOutcome {
  readonly result: WorkerResult | null;
  /** Set when the watchdog stopped a worker that made no progress. */
  readonly hang: { readonly targetIndex: number; readonly inputHex: string; readonly runSeed: number } | null;
  readonly workerError: string | null;
  readonly rssBefore: number;
  readonly rssPeak: number;
  readonly rssAfter: number;
}

export async function runInProcess(opts: {
  seed: number;
  inputs: number;
  budgetMs: number;
  hangMs: number;
  findingsDir: string;
  progress: (done: number) => void;
}): Promise<InProcessOutcome> {
  const shared = new SharedArrayBuffer(SHARED_HEADER_INTS * 4 + SHARED_INPUT_BYTES);
  const header = new Int32Array(shared, 0, SHARED_HEADER_INTS);
  const area = new Uint8Array(shared, SHARED_HEADER_INTS * 4);
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const data: WorkerInput = { seed: opts.seed, inputs: opts.inputs, budgetMs: opts.budgetMs, shared };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
  let hang: InProcessOutcome['hang'] = null;
  let last = -1;
  let lastChange = Date.now();
  const watch = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    const done = Atomics.load(header, 0);
    opts.progress(done);
    if (done !== last) {
      last = done;
      lastChange = Date.now();
      return;
    }
    if (Date.now() - lastChange > opts.hangMs && hang === null) {
      const len = Math.min(header[2]!, area.length);
      hang = { targetIndex: header[1]!, inputHex: Buffer.from(area.subarray(0, len)).toString('hex'), runSeed: header[3]! >>> 0 };
      writeFileSync(path.join(opts.findingsDir, 'hang.json'), JSON.stringify(hang));
      void worker.terminate();
    }
  }, 1000);
  let result: WorkerResult | null = null;
  let workerError: string | null = null;
  await new Promise<void>((resolve) => {
    worker.on('message', (m: WorkerResult) => (result = m));
    worker.on('error', (err) => (workerError = `${err.name}: ${err.message}`));
    worker.on('exit', () => resolve());
  });
  clearInterval(watch);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  return { result, hang, workerError, rssBefore, rssPeak, rssAfter: process.memoryUsage().rss };
}
