// Options of an audit store, their defaults and bounds.
import type { Checkpoint } from './checkpoint.js';
import type { AuditWriteError } from './errors.js';
import type { AuditIo } from './io.js';

export type Durability = 'strict' | 'batched';

export interface AuditStoreOptions {
  /** The store directory (created 0700 when missing). */
  readonly dir: string;
  /** PKCS#8 PEM Ed25519 private key; created (0600) when missing. */
  readonly keyFile: string;
  /**
   * strict: append() resolves once the record is fdatasync'ed (concurrent appends share one
   * write + fdatasync). batched: it resolves once written; fdatasync follows within fsyncIntervalMs.
   * (With the writer in its thread, batched appends are handed to it at most every 64 ms, together.)
   */
  readonly durability?: Durability;
  /** batched: the longest a written record waits for fdatasync. Default 200 ms. */
  readonly fsyncIntervalMs?: number;
  /** A checkpoint once this many records are not covered by one. Default 1000. */
  readonly checkpointEvery?: number;
  /** A checkpoint at least this often while records are not covered by one. Default 5000 ms. */
  readonly checkpointIntervalMs?: number;
  /** Roll to a new segment before a write once the active one has this many bytes. Default 64 MiB. */
  readonly maxSegmentBytes?: number;
  /** ... or once its first record is this old. Default 24 h (the retention granularity). */
  readonly maxSegmentAgeMs?: number;
  /** Most records in one write. Default 4096. */
  readonly maxBatchRecords?: number;
  /** Most appends waiting for the writer; beyond it append() rejects with 'queue-full'. Default 100,000. */
  readonly maxPendingRecords?: number;
  /** Largest canonical event in bytes; larger ones reject with 'invalid-event'. Default 1 MiB. */
  readonly maxRecordBytes?: number;
  /** Every checkpoint once durable (periodic, segment openings, at open and close): copy it off the host. */
  readonly onCheckpoint?: (checkpoint: Checkpoint) => void;
  /** The store stopped (false, with the error) or resumed (true) being able to write. */
  readonly onHealthChange?: (healthy: boolean, error: AuditWriteError | undefined) => void;
  /** A store key (32 bytes): new segments are sealed with it, AES-256-GCM (seal.ts, FORMAT.md).
   * Without it they are written in clear, for a directory on an encrypted volume. */
  readonly sealKey?: Uint8Array;
  /** The writer's hash chain and sealing in native code where the addon loads (native-writer.ts),
   * or (false) in JavaScript: the same bytes either way. Default true, false with
   * PGWARDEN_AUDIT_NATIVE=0. */
  readonly native?: boolean;
  /** File operations of the writer; tests wrap them. */
  readonly io?: AuditIo;
  /** Clock in ms since the epoch; tests move it. */
  readonly now?: () => number;
}

export interface ResolvedOptions {
  readonly durability: Durability;
  readonly fsyncIntervalMs: number;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
  readonly maxSegmentBytes: number;
  readonly maxSegmentAgeMs: number;
  readonly maxBatchRecords: number;
  readonly maxPendingRecords: number;
  readonly maxRecordBytes: number;
}

export function resolveOptions(o: AuditStoreOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    durability: o.durability ?? 'strict',
    fsyncIntervalMs: o.fsyncIntervalMs ?? 200,
    checkpointEvery: o.checkpointEvery ?? 1000,
    checkpointIntervalMs: o.checkpointIntervalMs ?? 5000,
    maxSegmentBytes: o.maxSegmentBytes ?? 64 * 1024 * 1024,
    maxSegmentAgeMs: o.maxSegmentAgeMs ?? 24 * 3600 * 1000,
    maxBatchRecords: o.maxBatchRecords ?? 4096,
    maxPendingRecords: o.maxPendingRecords ?? 100_000,
    maxRecordBytes: o.maxRecordBytes ?? 1024 * 1024,
  };
  if (r.durability !== 'strict' && r.durability !== 'batched') throw new RangeError(`durability must be 'strict' or 'batched'`);
  for (const [name, value] of Object.entries(r)) {
    if (name === 'durability') continue;
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw new RangeError(`${name} must be a positive integer`);
  }
  return r;
}
