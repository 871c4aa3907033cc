// The audit store's writer: append-only segments of hash-chained records, signed checkpoints,
// group commit. One writer loop does all file I/O in order; append() only canonicalizes the
// event and queues it. Each turn of the loop takes every queued event (up to maxBatchRecords),
// chains them, writes them with one write(2) and, under strict durability, one fdatasync(2).
import { createHash } from 'node:crypto';
import { mkdir, unlink } from 'node:fs/promises';
import { canonicalJson, CanonicalJsonError } from './canonical-json.js';
import { checkpointText, signCheckpoint, type Checkpoint } from './checkpoint.js';
import { exportCheckpoint, type ExportedCheckpoint } from './checkpoint-export.js';
import { AuditWriteError, systemCode } from './errors.js';
import { checkpointsPath, segmentPath } from './files.js';
import { nodeIo, type AppendFile, type AuditIo } from './io.js';
import { lockDirectory, type DirectoryLock } from './lock.js';
import type { MerkleFrontier } from './merkle.js';
import { resolveOptions, type AuditStoreOptions, type ResolvedOptions } from './options.js';
import { formatRecordLine, MAX_DEPTH, recordHash, ZERO_HASH } from './record.js';
import { recoverStore, type RecoveryReport } from './recover.js';
import { deleteOldSegments, type RetentionResult } from './retention.js';
import { loadSigningKey, type SigningKey } from './signing-key.js';

export interface AppendResult {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditStoreStats {
  readonly lastSeq: number;
  readonly activeSegment: number;
  readonly appended: number;
  /** Appends rejected because of a write failure, a full queue, a closed store or a bad event. */
  readonly rejected: number;
  readonly writes: number;
  /** fdatasync calls on segment and checkpoint files. */
  readonly syncs: number;
  readonly checkpoints: number;
  readonly pending: number;
}

interface Pending {
  readonly text: string;
  readonly timeMs: number;
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: Error) => void;
}

interface Waiter {
  readonly resolve: (c: Checkpoint) => void;
  readonly reject: (e: Error) => void;
}

export async function openAuditStore(options: AuditStoreOptions): Promise<AuditStore> {
  const resolved = resolveOptions(options);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const key = await loadSigningKey(options.keyFile);
  const lock = await lockDirectory(options.dir);
  try {
    const store = new AuditStore(options, resolved, key, lock);
    await store.start();
    return store;
  } catch (err) {
    await lock.release();
    throw err;
  }
}

export class AuditStore {
  readonly dir: string;
  readonly durability: 'strict' | 'batched';
  private readonly io: AuditIo;
  private readonly now: () => number;

  private seq = 0;
  private lastHash = ZERO_HASH;
  private frontier!: MerkleFrontier;
  private active = 1;
  private segment!: AppendFile;
  private segmentBytes = 0;
  private segmentFirstTimeMs: number | undefined;
  private unsynced = false;
  private checkpoints!: AppendFile;
  private checkpointBytes = 0;
  private last!: Checkpoint;
  private lastText = '';

  private pending: Pending[] = [];
  private waiters: Waiter[] = [];
  private idleWaiters: (() => void)[] = [];
  private running = false;
  private syncDue = false;
  private timeDue = false;
  private checkpointRetryAt = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private broken: AuditWriteError | undefined;
  private isHealthy = true;
  private error: AuditWriteError | undefined;
  private recoveryReport!: RecoveryReport;
  private counts = { appended: 0, rejected: 0, writes: 0, syncs: 0, checkpoints: 0 };

  /** @internal use openAuditStore */
  constructor(
    private readonly options: AuditStoreOptions,
    private readonly o: ResolvedOptions,
    private readonly key: SigningKey,
    private readonly lock: DirectoryLock,
  ) {
    this.dir = options.dir;
    this.durability = o.durability;
    this.io = options.io ?? nodeIo;
    this.now = options.now ?? Date.now;
  }

  /** @internal */
  async start(): Promise<void> {
    const r = await recoverStore(this.dir, this.key, this.o.maxRecordBytes);
    this.recoveryReport = r.report;
    this.seq = r.seq;
    this.lastHash = r.lastHash;
    this.frontier = r.frontier;
    this.active = r.active;
    this.segmentBytes = r.segmentBytes;
    this.segmentFirstTimeMs = r.segmentFirstTimeMs;
    this.checkpointBytes = r.checkpointBytes;
    if (r.lastCheckpoint) {
      this.last = r.lastCheckpoint.checkpoint;
      this.lastText = r.lastCheckpoint.text;
    }
    this.checkpoints = await this.io.openAppend(checkpointsPath(this.dir, this.active));
    if (r.needsOpening) await this.appendCheckpoint(this.makeCheckpoint(), true);
    this.segment = await this.io.openAppend(segmentPath(this.dir, this.active));
    await this.io.syncDirectory(this.dir);
    if (this.seq > this.last.size) await this.appendCheckpoint(this.makeCheckpoint(), true);
    this.checkpointTimer = setInterval(() => {
      if (this.seq > this.last.size) {
        this.timeDue = true;
        this.kick();
      }
    }, this.o.checkpointIntervalMs);
    this.checkpointTimer.unref();
  }

  /** What opening found: a fresh store, torn tails cut off, records not yet covered by a checkpoint. */
  get recovery(): RecoveryReport {
    return this.recoveryReport;
  }

  /** False after a write, fsync or checkpoint failed, until a later write succeeds. */
  get healthy(): boolean {
    return this.isHealthy && !this.broken;
  }

  get lastError(): AuditWriteError | undefined {
    return this.error;
  }

  get lastCheckpoint(): Checkpoint {
    return this.last;
  }

  get publicKey(): SigningKey['publicKey'] {
    return this.key.publicKey;
  }

  get keyId(): string {
    return this.key.keyId;
  }

  stats(): AuditStoreStats {
    return { lastSeq: this.seq, activeSegment: this.active, pending: this.pending.length, ...this.counts };
  }

  /**
   * Queues one event (any JSON object). Resolves with its seq and hash once written (batched) or
   * written and fdatasync'ed (strict); rejects with AuditWriteError.
   */
  append(event: object): Promise<AppendResult> {
    const refuse = (reason: AuditWriteError['reason'], message: string, cause?: unknown): Promise<AppendResult> => {
      this.counts.rejected++;
      return Promise.reject(new AuditWriteError(reason, message, cause));
    };
    if (this.closing) return refuse('closed', 'the audit store is closed');
    if (this.broken) return refuse('io', `the audit store cannot write until reopened: ${this.broken.message}`, this.broken);
    if (this.pending.length >= this.o.maxPendingRecords) return refuse('queue-full', `more than ${this.o.maxPendingRecords} audit records are waiting to be written`);
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return refuse('invalid-event', 'an audit event must be a JSON object');
    let text: string;
    try {
      text = canonicalJson(event, MAX_DEPTH);
    } catch (err) {
      return refuse('invalid-event', `the audit event is not JSON: ${err instanceof CanonicalJsonError ? err.message : 'cannot encode'}`);
    }
    if (text.length > this.o.maxRecordBytes / 3 && Buffer.byteLength(text) > this.o.maxRecordBytes) {
      return refuse('invalid-event', `the audit event is larger than ${this.o.maxRecordBytes} bytes`);
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ text, timeMs: this.now(), resolve, reject });
      this.kick();
    });
  }

  /** Writes a checkpoint now (unless the last one already covers every record) and returns it. */
  checkpoint(): Promise<Checkpoint> {
    if (this.closing) return Promise.reject(new AuditWriteError('closed', 'the audit store is closed'));
    return this.requestCheckpoint();
  }

  /** The portable form of a checkpoint (default: the last) for a witness off the host. */
  exportCheckpoint(checkpoint: Checkpoint = this.last): ExportedCheckpoint {
    return exportCheckpoint(checkpoint, this.key.publicKey);
  }

  /** Deletes whole segments, oldest first, whose last record is older than `olderThan`. */
  applyRetention(olderThan: Date): Promise<RetentionResult> {
    return deleteOldSegments(this.dir, this.active, olderThan, this.o.maxRecordBytes, this.io);
  }

  /** Writes what is queued, a final checkpoint, fdatasyncs and releases the directory. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.checkpointTimer);
    clearTimeout(this.syncTimer);
    await this.idle();
    if (!this.broken && this.seq > this.last.size) await this.requestCheckpoint().catch(() => undefined);
    if (!this.broken && this.unsynced) await this.segment.datasync().catch(() => undefined);
    await this.segment.close().catch(() => undefined);
    await this.checkpoints.close().catch(() => undefined);
    await this.lock.release();
  }

  private requestCheckpoint(): Promise<Checkpoint> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  private idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    try {
      while (!this.broken) {
        if (this.pending.length > 0) await this.writeBatch();
        if (this.checkpointDue()) await this.writeCheckpoint();
        else if (this.syncDue) await this.syncSegment();
        else if (this.pending.length === 0) break;
      }
    } catch (err) {
      // Not an I/O failure (those are handled where they happen): a bug. Stop writing, loudly.
      this.broken = this.failed(err, 'the audit writer stopped on an internal error');
    } finally {
      if (this.broken) {
        for (const p of this.pending.splice(0)) p.reject(this.broken);
        for (const w of this.waiters.splice(0)) w.reject(this.broken);
      }
      this.running = false;
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private checkpointDue(): boolean {
    if (this.waiters.length > 0) return true;
    if (this.seq === this.last.size || this.now() < this.checkpointRetryAt) return false;
    return this.timeDue || this.seq - this.last.size >= this.o.checkpointEvery;
  }

  private needsRoll(): boolean {
    if (this.segmentBytes === 0) return false;
    if (this.segmentBytes >= this.o.maxSegmentBytes) return true;
    return this.segmentFirstTimeMs !== undefined && this.now() - this.segmentFirstTimeMs >= this.o.maxSegmentAgeMs;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.pending.length <= this.o.maxBatchRecords ? this.pending : this.pending.slice(0, this.o.maxBatchRecords);
    this.pending = batch === this.pending ? [] : this.pending.slice(batch.length);
    if (this.needsRoll()) {
      try {
        await this.roll();
      } catch (err) {
        this.rejectBatch(batch, this.failed(err, 'cannot start a new audit segment'));
        return;
      }
    }
    const before = { seq: this.seq, lastHash: this.lastHash, frontier: this.frontier.clone() };
    const results: AppendResult[] = new Array(batch.length);
    let text = '';
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      const seq = this.seq + 1;
      const time = new Date(item.timeMs).toISOString();
      const digest = recordHash(seq, time, this.lastHash, item.text);
      const hash = digest.toString('hex');
      text += formatRecordLine(seq, time, this.lastHash, hash, item.text);
      this.frontier.append(digest);
      this.seq = seq;
      this.lastHash = hash;
      results[i] = { seq, hash };
    }
    const data = Buffer.from(text);
    try {
      this.counts.writes++;
      await this.segment.append(data);
      if (this.durability === 'strict') {
        this.counts.syncs++;
        await this.segment.datasync();
      }
    } catch (err) {
      this.seq = before.seq;
      this.lastHash = before.lastHash;
      this.frontier = before.frontier;
      try {
        await this.segment.truncate(this.segmentBytes);
      } catch (truncErr) {
        this.broken = new AuditWriteError('io', `cannot cut a failed write from ${segmentPath(this.dir, this.active)}`, truncErr);
      }
      this.rejectBatch(batch, this.failed(err, `cannot write ${batch.length} audit records`));
      return;
    }
    this.segmentBytes += data.length;
    this.segmentFirstTimeMs ??= batch[0]!.timeMs;
    this.counts.appended += batch.length;
    if (this.durability === 'batched') {
      this.unsynced = true;
      this.scheduleSync();
    }
    this.recovered();
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
  }

  private rejectBatch(batch: readonly Pending[], error: AuditWriteError): void {
    this.counts.rejected += batch.length;
    for (const p of batch) p.reject(error);
  }

  private scheduleSync(): void {
    if (this.syncTimer !== undefined || this.closing) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.syncDue = true;
      this.kick();
    }, this.o.fsyncIntervalMs);
    this.syncTimer.unref();
  }

  private async syncSegment(): Promise<void> {
    this.syncDue = false;
    if (!this.unsynced) return;
    try {
      this.counts.syncs++;
      await this.segment.datasync();
      this.unsynced = false;
      this.recovered();
    } catch (err) {
      this.failed(err, 'cannot fdatasync the audit segment');
      this.scheduleSync();
    }
  }

  private async writeCheckpoint(): Promise<void> {
    const waiters = this.waiters.splice(0);
    this.timeDue = false;
    try {
      if (this.seq > this.last.size) await this.appendCheckpoint(this.makeCheckpoint(), true);
    } catch (err) {
      this.checkpointRetryAt = this.now() + Math.min(this.o.checkpointIntervalMs, 1000);
      const error = this.failed(err, 'cannot write an audit checkpoint');
      for (const w of waiters) w.reject(error);
      return;
    }
    this.recovered();
    for (const w of waiters) w.resolve(this.last);
  }

  private makeCheckpoint(): Checkpoint {
    const prev = this.lastText ? createHash('sha256').update(this.lastText).digest('hex') : ZERO_HASH;
    return signCheckpoint(
      {
        v: 1,
        index: this.lastText ? this.last.index + 1 : 0,
        size: this.seq,
        root: this.frontier.root().toString('hex'),
        frontier: this.frontier.hexes(),
        lastHash: this.lastHash,
        prev,
        time: new Date(this.now()).toISOString(),
        keyId: this.key.keyId,
      },
      this.key.privateKey,
    );
  }

  /** Records first (a checkpoint never covers records that are not durable), then the checkpoint. */
  private async appendCheckpoint(cp: Checkpoint, notify: boolean, file: AppendFile = this.checkpoints): Promise<void> {
    if (this.unsynced) {
      this.counts.syncs++;
      await this.segment.datasync();
      this.unsynced = false;
    }
    const text = checkpointText(cp);
    const data = Buffer.from(`${text}\n`);
    const before = file === this.checkpoints ? this.checkpointBytes : 0;
    try {
      await file.append(data);
      this.counts.syncs++;
      await file.datasync();
    } catch (err) {
      await file.truncate(before).catch((truncErr: unknown) => {
        this.broken = new AuditWriteError('io', 'cannot cut a failed checkpoint write', truncErr);
      });
      throw err;
    }
    this.checkpointBytes = before + data.length;
    this.last = cp;
    this.lastText = text;
    this.counts.checkpoints++;
    if (notify) this.notify(() => this.options.onCheckpoint?.(cp));
  }

  /** Seals the active segment with the next one's opening checkpoint, then switches to it. */
  private async roll(): Promise<void> {
    const next = this.active + 1;
    const ckPath = checkpointsPath(this.dir, next);
    const segPath = segmentPath(this.dir, next);
    let ck: AppendFile | undefined;
    let seg: AppendFile | undefined;
    const saved = { bytes: this.checkpointBytes, last: this.last, lastText: this.lastText };
    try {
      ck = await this.io.openAppend(ckPath);
      this.checkpointBytes = 0;
      await this.appendCheckpoint(this.makeCheckpoint(), false, ck);
      seg = await this.io.openAppend(segPath);
      await this.io.syncDirectory(this.dir);
    } catch (err) {
      Object.assign(this, { checkpointBytes: saved.bytes, last: saved.last, lastText: saved.lastText });
      await seg?.close().catch(() => undefined);
      await ck?.close().catch(() => undefined);
      await unlink(segPath).catch(() => undefined);
      await unlink(ckPath).catch(() => undefined);
      throw err;
    }
    await this.segment.close().catch(() => undefined);
    await this.checkpoints.close().catch(() => undefined);
    this.segment = seg;
    this.checkpoints = ck;
    this.active = next;
    this.segmentBytes = 0;
    this.segmentFirstTimeMs = undefined;
    const cp = this.last;
    this.notify(() => this.options.onCheckpoint?.(cp));
  }

  private failed(err: unknown, what: string): AuditWriteError {
    const error = err instanceof AuditWriteError ? err : new AuditWriteError('io', `${what}: ${systemCode(err) ?? 'error'}`, err);
    this.error = error;
    if (this.isHealthy) {
      this.isHealthy = false;
      this.notify(() => this.options.onHealthChange?.(false, error));
    }
    return error;
  }

  private recovered(): void {
    if (this.isHealthy || this.broken) return;
    this.isHealthy = true;
    this.notify(() => this.options.onHealthChange?.(true, undefined));
  }

  private notify(call: () => void): void {
    try {
      call();
    } catch {
      // A listener's failure must not stop the writer.
    }
  }
}
