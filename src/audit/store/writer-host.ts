// The writer's side of the store's message protocol: it owns a StoreWriter and speaks to the
// AuditStore (store.ts) only through messages, so the same code runs in a worker thread
// (writer-worker.ts, the default) or in the caller's thread (when tests pass their own file
// operations or clock, which cannot cross a thread boundary).
//
// The store sends events as canonical JSON texts, many per message (the few it could not
// canonicalize come as JSON.stringify texts, parsed and put in canonical form here); each is
// hashed, chained and written.
// Results go back in the order the events were sent, one message per written batch.
import type { KeyObject } from 'node:crypto';
import { canonicalJsonOfParsed, CanonicalJsonError } from './canonical-json.js';
import type { Checkpoint } from './checkpoint.js';
import { AuditCorruptError, AuditKeyError, AuditLockError, AuditWriteError, type AuditWriteReason } from './errors.js';
import type { AuditIo } from './io.js';
import type { ResolvedOptions } from './options.js';
import { MAX_DEPTH } from './record.js';
import type { RecoveryReport } from './recover.js';
import { StoreWriter, type QueuedRecord, type WriterCounts } from './writer.js';
import { holdStoreKey } from './seal-keys.js';
import { nativeWriter } from './native-writer.js';

// ---- messages ----

export interface InitMessage {
  readonly t: 'init';
  readonly dir: string;
  readonly options: ResolvedOptions;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;
  /** The store key, when its new segments are sealed. */
  readonly sealKey?: Uint8Array;
  /** Native code where it loads (native-writer.ts), else JavaScript. */
  readonly native: boolean;
}

export type ToWriter =
  | InitMessage
  /** `texts`: JSON texts, `count` of them in all; `times` one per entry of `texts`. A number in
   * `texts` stands for a text given as UTF-8 bytes (canonical JSON), next in `bytes`: n ≥ 0, one
   * text of n bytes; n < 0, a run of -n texts, each as its length (u32 LE) and its bytes. */
  | {
      readonly t: 'append';
      readonly texts: readonly (string | number)[];
      readonly count: number;
      readonly times: Float64Array;
      /** Positions in `texts` (ascending) of the texts that are not canonical yet: JSON.stringify's, parsed and canonicalized here. The others are canonical JSON already. */
      readonly raw: readonly number[];
      /** Someone waits for these records' hashes (append() callers); else only the count comes back. */
      readonly hashes: boolean;
      /** The texts given as bytes, one after the other (transferred). */
      readonly bytes?: Uint8Array;
    }
  | { readonly t: 'checkpoint'; readonly id: number }
  | { readonly t: 'close' };

export interface WriterState {
  readonly seq: number;
  readonly active: number;
  readonly counts: WriterCounts;
}

export type FromWriter =
  | { readonly t: 'ready'; readonly recovery: RecoveryReport; readonly last: Checkpoint; readonly state: WriterState }
  | { readonly t: 'openFailed'; readonly error: SerializedError }
  /** The next `count` events sent: written (ok, numbered from firstSeq, `hashes` 64 hex each) or rejected. */
  | {
      readonly t: 'batch';
      readonly count: number;
      readonly ok: boolean;
      readonly firstSeq: number;
      readonly hashes: string;
      readonly invalid: readonly (readonly [number, string])[];
      readonly error: SerializedError | null;
      readonly state: WriterState;
    }
  | { readonly t: 'checkpointed'; readonly checkpoint: Checkpoint; readonly state: WriterState }
  | { readonly t: 'checkpointDone'; readonly id: number; readonly checkpoint: Checkpoint | null; readonly error: SerializedError | null }
  | { readonly t: 'health'; readonly healthy: boolean; readonly error: SerializedError | null }
  | { readonly t: 'broken'; readonly error: SerializedError }
  | { readonly t: 'closed'; readonly state: WriterState };

// ---- errors across the boundary ----

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly reason?: AuditWriteReason;
  readonly errno?: string;
  readonly file?: string;
  readonly line?: number;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof AuditWriteError) return { name: err.name, message: err.message, reason: err.reason, ...(err.errno ? { errno: err.errno } : {}) };
  if (err instanceof AuditCorruptError) {
    return {
      name: err.name,
      message: err.message,
      ...(err.file !== undefined ? { file: err.file } : {}),
      ...(err.line !== undefined ? { line: err.line } : {}),
    };
  }
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

export function deserializeError(e: SerializedError): Error {
  switch (e.name) {
    case 'AuditWriteError':
      return new AuditWriteError(e.reason ?? 'io', e.message, e.errno ? { code: e.errno } : undefined);
    case 'AuditCorruptError':
      return new AuditCorruptError(e.message, e.file, e.line);
    case 'AuditKeyError':
      return new AuditKeyError(e.message);
    case 'AuditLockError':
      return new AuditLockError(e.message);
    default: {
      const err = new Error(e.message);
      err.name = e.name;
      return err;
    }
  }
}

// ---- the host ----

export interface LocalParts {
  readonly io: AuditIo;
  readonly now: () => number;
}

export class WriterHost {
  private writer: StoreWriter | null = null;
  private releaseKey: () => void = () => undefined;
  /** Records received and reported so far, and the last one whose hash was asked for. */
  private received = 0;
  private reported = 0;
  private hashesThrough = 0;

  constructor(
    private readonly post: (message: FromWriter) => void,
    private readonly local: LocalParts,
    /** Called once the writer has closed its files (a worker exits then). */
    private readonly onClosed: () => void = () => undefined,
  ) {}

  handle(message: ToWriter): void {
    switch (message.t) {
      case 'init':
        void this.init(message);
        return;
      case 'append':
        this.received += message.count;
        if (message.hashes) this.hashesThrough = this.received;
        this.append(message.texts, message.count, message.times, message.raw, message.bytes);
        return;
      case 'checkpoint':
        this.checkpoint(message.id);
        return;
      case 'close':
        void this.close();
        return;
    }
  }

  private async init(m: InitMessage): Promise<void> {
    if (m.sealKey) this.releaseKey = holdStoreKey(m.dir, m.sealKey);
    const writer = new StoreWriter({
      dir: m.dir,
      options: m.options,
      privateKey: m.privateKey,
      publicKey: m.publicKey,
      keyId: m.keyId,
      ...(m.sealKey ? { sealKey: m.sealKey } : {}),
      native: m.native ? nativeWriter() : null,
      io: this.local.io,
      now: this.local.now,
      events: {
        batch: (b) => {
          const wanted = this.reported < this.hashesThrough;
          this.reported += b.count;
          this.post({
            t: 'batch',
            count: b.count,
            ok: b.ok,
            firstSeq: b.ok ? b.firstSeq : 0,
            hashes: b.ok && wanted ? b.hashes : '',
            invalid: b.invalid,
            error: b.ok ? null : serializeError(b.error),
            state: this.state(),
          });
        },
        checkpoint: (checkpoint) => this.post({ t: 'checkpointed', checkpoint, state: this.state() }),
        health: (healthy, error) => this.post({ t: 'health', healthy, error: error ? serializeError(error) : null }),
        broken: (error) => this.post({ t: 'broken', error: serializeError(error) }),
      },
    });
    this.writer = writer; // checkpoints written while opening are announced with its state
    try {
      await writer.start();
    } catch (err) {
      this.writer = null;
      this.post({ t: 'openFailed', error: serializeError(err) });
      this.releaseKey();
      this.onClosed();
      return;
    }
    this.post({ t: 'ready', recovery: writer.recovery, last: writer.last, state: this.state() });
  }

  private append(texts: readonly (string | number)[], count: number, times: Float64Array, raw: readonly number[], bytes?: Uint8Array): void {
    const writer = this.writer;
    if (writer === null) return;
    const records: QueuedRecord[] = new Array(count);
    let k = 0;
    let r = 0;
    let at = 0;
    // Plain views, not Buffers: cheaper to make (see RecordLines).
    const view = (n: number) => new Uint8Array(bytes!.buffer, bytes!.byteOffset + at, n);
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i]!;
      const timeMs = times[i]!;
      if (typeof text !== 'number') {
        if (r < raw.length && raw[r] === i) {
          r++;
          records[k++] = canonicalRecord(text, timeMs);
        } else records[k++] = { text, timeMs };
      } else if (text >= 0) {
        records[k++] = { text: view(text), timeMs };
        at += text;
      } else {
        for (let j = 0; j < -text; j++) {
          const n = bytes![at]! | (bytes![at + 1]! << 8) | (bytes![at + 2]! << 16) | (bytes![at + 3]! * 2 ** 24);
          at += 4;
          records[k++] = { text: view(n), timeMs };
          at += n;
        }
      }
    }
    writer.enqueue(records);
  }

  private checkpoint(id: number): void {
    const writer = this.writer;
    if (writer === null) return;
    writer.requestCheckpoint().then(
      (checkpoint) => this.post({ t: 'checkpointDone', id, checkpoint, error: null }),
      (err: unknown) => this.post({ t: 'checkpointDone', id, checkpoint: null, error: serializeError(err) }),
    );
  }

  private async close(): Promise<void> {
    const writer = this.writer;
    if (writer !== null) await writer.close();
    this.post({ t: 'closed', state: writer ? this.state() : { seq: 0, active: 0, counts: { appended: 0, rejected: 0, writes: 0, syncs: 0, checkpoints: 0 } } });
    this.releaseKey();
    this.onClosed();
  }

  private state(): WriterState {
    const w = this.writer!;
    return { seq: w.seq, active: w.active, counts: { ...w.counts } };
  }
}

/** One JSON text as the writer queues it: canonical, or marked invalid. */
function canonicalRecord(json: string, timeMs: number): QueuedRecord {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { text: '', timeMs, invalid: 'the audit event is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { text: '', timeMs, invalid: 'an audit event must be a JSON object' };
  try {
    return { text: canonicalJsonOfParsed(value, MAX_DEPTH), timeMs };
  } catch (err) {
    return { text: '', timeMs, invalid: `the audit event is not JSON: ${err instanceof CanonicalJsonError ? err.message : 'cannot encode'}` };
  }
}
