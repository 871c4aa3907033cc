// What the fuzz worker and the main thread exchange.

/** Shared memory layout: int32 [0] inputs done, [1] target index, [2] current input length,
 * [3] current run seed; then the current input's bytes. */
export const SHARED_HEADER_INTS = 4;
export const SHARED_INPUT_BYTES = 128 * 1024;

export interface WorkerInput {
  readonly seed: number;
  readonly inputs: number;
  /** An input running longer than this counts as a hang. */
  readonly budgetMs: number;
  readonly shared: SharedArrayBuffer;
}

export interface TargetStats {
  name: string;
  inputs: number;
  /** Parsed without error. */
  accepted: number;
  /** Refused with the parser's own typed error. */
  typedErrors: number;
  /** Any other exception. */
  crashes: number;
  /** A broken invariant (bytes lost, a bound exceeded, a fuzzed proof accepted...). */
  invariants: number;
  /** Inputs over the time budget. */
  slow: number;
  maxMs: number;
  totalMs: number;
  maxInputBytes: number;
  /** The slowest input, run again alone at the end: its median time over 20 runs (a slow
   * outlier under load is the machine; a slow input alone is the parser). */
  slowestAloneMs: number;
}

export interface FindingReport {
  readonly target: string;
  readonly kind: 'crash' | 'invariant';
  readonly error: string;
  readonly stack: string;
  readonly inputHex: string;
  readonly runSeed: number;
}

export interface WorkerResult {
  readonly stats: TargetStats[];
  readonly findings: FindingReport[];
  readonly heapBefore: number;
  readonly heapAfter: number;
  readonly elapsedMs: number;
}
