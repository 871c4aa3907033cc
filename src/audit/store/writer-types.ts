// What the audit store's writer takes and reports (writer.ts), shared with its host.
import type { KeyObject } from 'node:crypto';
import type { Checkpoint } from './checkpoint.js';
import type { AuditWriteError } from './errors.js';
import type { AuditIo } from './io.js';
import type { ResolvedOptions } from './options.js';
import type { NativeWriter } from './native-writer.js';

/** One record waiting for the writer. */
export interface QueuedRecord {
  /** The canonical JSON of the event (or its UTF-8 bytes); ignored when `invalid` is set. */
  readonly text: string | Uint8Array;
  /** When the store accepted the event (ms since the epoch). */
  readonly timeMs: number;
  /** Why the event cannot be recorded (it is rejected with 'invalid-event' in its turn). */
  readonly invalid?: string;
}

/** What became of a run of consecutive queued records (in the order they were queued). */
export type BatchOutcome =
  | {
      readonly ok: true;
      readonly count: number;
      /** Seq of the first written record (the written ones are numbered without gaps). */
      readonly firstSeq: number;
      /** Hex hashes of the written records, end to end, in order. */
      readonly hashes: string;
      /** Positions (0-based, within the run) of records rejected as invalid, with why. */
      readonly invalid: readonly (readonly [number, string])[];
    }
  | { readonly ok: false; readonly count: number; readonly error: AuditWriteError; readonly invalid: readonly (readonly [number, string])[] };

export interface WriterCounts {
  appended: number;
  rejected: number;
  writes: number;
  syncs: number;
  checkpoints: number;
}

export interface WriterEvents {
  /** A run of records was written (or rejected); called in queue order. */
  readonly batch: (outcome: BatchOutcome) => void;
  /** A durable checkpoint (a segment's seal once the roll is complete). */
  readonly checkpoint: (checkpoint: Checkpoint) => void;
  /** false with the error on every failure; true once when writing works again. */
  readonly health: (healthy: boolean, error: AuditWriteError | undefined) => void;
  /** The writer stopped for good (until reopened): every later record is refused. */
  readonly broken: (error: AuditWriteError) => void;
}

export interface WriterSetup {
  readonly dir: string;
  readonly options: ResolvedOptions;
  readonly privateKey: KeyObject;
  readonly keyId: string;
  /** Checks the last checkpoint's signature at open. */
  readonly publicKey: KeyObject;
  readonly io: AuditIo;
  readonly now: () => number;
  /** The store key: new segments are sealed with it (its thread holds it, seal-keys.ts). */
  readonly sealKey?: Uint8Array;
  /** The native hash chain and sealing (native-writer.ts), or null for JavaScript's. */
  readonly native: NativeWriter | null;
  readonly events: WriterEvents;
}
