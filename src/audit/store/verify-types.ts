// What verifyStore reports.
import type { KeyObject } from 'node:crypto';
import type { Checkpoint } from './checkpoint.js';
import type { ExportedCheckpoint } from './checkpoint-export.js';

export type VerifyReason =
  | 'bad-line' // a record line is not JSON, not canonical, not UTF-8, or torn in the middle of the store
  | 'hash-mismatch' // a record's content does not match its hash (a changed byte)
  | 'prev-mismatch' // a record does not link to the one before it (a record replaced)
  | 'seq-gap' // seq jumps forward (records removed)
  | 'reordered' // seq out of order (records swapped or moved)
  | 'segment-missing' // a segment file in the middle is gone
  | 'truncated' // a checkpoint (local or the witness's) covers more records than the store holds
  | 'root-mismatch' // the records do not hash to a checkpoint's Merkle root (rewritten history)
  | 'checkpoint-bad-line' // a checkpoint line is not a canonical checkpoint
  | 'checkpoint-signature' // a checkpoint's signature does not verify under the given key
  | 'checkpoint-chain' // checkpoint index/prev link broken: a checkpoint line removed, reordered or inserted
  | 'checkpoint-missing' // checkpoints the witness holds (or the one to start from) are gone
  | 'checkpoint-mismatch' // the local checkpoint differs from the witness's copy of the same index
  | 'no-anchor'; // no signed checkpoint to start from

export interface VerifyFailure {
  readonly reason: VerifyReason;
  /** Base name of the file, or 'witness' / 'from-checkpoint' for a checkpoint given by the caller. */
  readonly file: string;
  /** 1-based line in that file; 0 when the file itself is missing or the input is the caller's. */
  readonly line: number;
  /** The record concerned: the bad one, the first missing one, or the last one a checkpoint covers. */
  readonly seq?: number;
  /** The checkpoint concerned, by index. */
  readonly checkpoint?: number;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** The first problem found, in log order. */
  readonly failure?: VerifyFailure;
  /** First and last record checked (undefined / the anchor's size when none). */
  readonly firstSeq: number | undefined;
  readonly lastSeq: number;
  readonly records: number;
  readonly checkpoints: number;
  /** The checkpoint verification started from. */
  readonly anchor?: Checkpoint;
  /** The newest checkpoint verified against the records. */
  readonly lastCheckpoint?: Checkpoint;
  /** Things that are not proof of tampering, e.g. a torn last line of a store that crashed. */
  readonly warnings: readonly string[];
}

export interface VerifyOptions {
  /** The audit public key (KeyObject or SPKI PEM); checkpoints by any other key fail. */
  readonly publicKey: KeyObject | string;
  /** Start at this checkpoint (its index in the store, or a copy) instead of the first one held. */
  readonly fromCheckpoint?: number | Checkpoint | ExportedCheckpoint;
  /** The newest checkpoint held off the host: the store must hold its records, with its root. */
  readonly lastKnownCheckpoint?: Checkpoint | ExportedCheckpoint;
  /** Longest record line accepted. Default 1 MiB + 512. */
  readonly maxLineBytes?: number;
}
