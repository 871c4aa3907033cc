// The audit store's writer: append-only segments of hash-chained records, signed checkpoints,
// group commit. It runs wherever the store's host puts it (a worker thread by default, see
// writer-host.ts), never needs the caller's event loop, and does all file I/O in order: each turn
// of its loop takes every queued record (up to maxBatchRecords), chains them, writes them with one
// write(2) and, under strict durability, one fdatasync(2). Records arrive already canonical;
// records marked invalid keep their place in the order (so results stay in ticket order) but are
// never written and take no seq.
import { createHash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { checkpointText, signCheckpoint, type Checkpoint } from './checkpoint.js';
import { AuditWriteError, systemCode } from './errors.js';
import { checkpointsPath, segmentPath } from './files.js';
import type { AppendFile, AuditIo } from './io.js';
import type { ResolvedOptions } from './options.js';
import { ZERO_HASH } from './record.js';
import { RecordChain } from './record-chain.js';
import { recoverStore, type RecoveryReport } from './recover.js';
import { SealedAppendFile, startsSealed } from './sealed-file.js';
import type { QueuedRecord, WriterCounts, WriterEvents, WriterSetup } from './writer-types.js';

export type { BatchOutcome, QueuedRecord, WriterCounts, WriterEvents, WriterSetup } from './writer-types.js';

interface Waiter {
  readonly resolve: (c: Checkpoint) => void;
  readonly reject: (e: AuditWriteError) => void;
}

export class StoreWriter {
  private readonly o: ResolvedOptions;
  private readonly io: AuditIo;
  private readonly now: () => number;
  private readonly events: WriterEvents;

  /** The records' hash chain and Merkle frontier (the state the next record chains on). */
  private readonly records: RecordChain;
  active = 1;
  private segment!: AppendFile;
  private segmentBytes = 0;
  private segmentFirstTimeMs: number | undefined;
  private unsynced = false;
  private checkpoints!: AppendFile;
  private checkpointBytes = 0;
  last!: Checkpoint;
  private lastText = '';

  private pending: QueuedRecord[] = [];
  private waiters: Waiter[] = [];
  private idleWaiters: (() => void)[] = [];
  private running = false;
  private syncDue = false;
  private timeDue = false;
  private checkpointRetryAt = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private closing = false;
  broken: AuditWriteError | undefined;
  private isHealthy = true;
  recovery!: RecoveryReport;
  readonly counts: WriterCounts = { appended: 0, rejected: 0, writes: 0, syncs: 0, checkpoints: 0 };

  constructor(private readonly setup: WriterSetup) {
    this.o = setup.options;
    this.io = setup.io;
    this.now = setup.now;
    this.events = setup.events;
    this.records = new RecordChain(setup.native);
  }

  /** The last record's seq. */
  get seq(): number {
    return this.records.seq;
  }

  get queued(): number {
    return this.pending.length;
  }

  /** Recovers the directory's state and opens the active files (the directory is locked by the caller). */
  async start(): Promise<void> {
    const dir = this.setup.dir;
    const r = await recoverStore(dir, { privateKey: this.setup.privateKey, publicKey: this.setup.publicKey, keyId: this.setup.keyId }, this.o.maxRecordBytes);
    this.recovery = r.report;
    this.records.restore(r);
    this.active = r.active;
    this.segmentBytes = r.segmentBytes;
    this.segmentFirstTimeMs = r.segmentFirstTimeMs;
    this.checkpointBytes = r.checkpointBytes;
    if (r.lastCheckpoint) {
      this.last = r.lastCheckpoint.checkpoint;
      this.lastText = r.lastCheckpoint.text;
    }
    this.checkpoints = await this.io.openAppend(checkpointsPath(dir, this.active));
    if (r.needsOpening) await this.appendCheckpoint(this.makeCheckpoint(), true);
    this.segment = await this.openSegment(segmentPath(dir, this.active));
    await this.io.syncDirectory(dir);
    if (this.seq > this.last.size) await this.appendCheckpoint(this.makeCheckpoint(), true);
    this.checkpointTimer = setInterval(() => {
      if (this.seq > this.last.size) {
        this.timeDue = true;
        this.kick();
      }
    }, this.o.checkpointIntervalMs);
    this.checkpointTimer.unref();
  }

  /** Queues records; their outcome comes through events.batch, in order. */
  enqueue(records: readonly QueuedRecord[]): void {
    if (records.length === 0) return;
    if (this.closing || this.broken) {
      const error = this.broken ?? new AuditWriteError('closed', 'the audit store is closed');
      this.rejectRun(records, error);
      return;
    }
    for (const r of records) this.pending.push(r);
    this.kick();
  }

  /** Writes a checkpoint now (unless the last one already covers every record). */
  requestCheckpoint(): Promise<Checkpoint> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closing) return Promise.reject(new AuditWriteError('closed', 'the audit store is closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  /** Writes what is queued, a final checkpoint, fdatasyncs and closes the files. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.checkpointTimer);
    clearTimeout(this.syncTimer);
    await this.idle();
    if (!this.broken && this.seq > this.last.size) {
      await new Promise<void>((resolve) => {
        this.waiters.push({ resolve: () => resolve(), reject: () => resolve() });
        this.kick();
      });
      await this.idle();
    }
    if (!this.broken && this.unsynced) await this.segment.datasync().catch(() => undefined);
    await this.segment.close().catch(() => undefined);
    await this.checkpoints.close().catch(() => undefined);
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
        const error = this.broken;
        this.rejectRun(this.pending.splice(0), error);
        for (const w of this.waiters.splice(0)) w.reject(error);
        this.notify(() => this.events.broken(error));
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
    // A checkpoint is due after the batch that brings checkpointEvery records or more since the
    // last one: under a backlog that can be up to maxBatchRecords later. Cutting batches at the
    // count instead cost the writer about 0.4 µs per record under load (bench:audit, session 17):
    // a checkpoint's signature and two fdatasyncs every 1,000 records exactly, where batches of
    // 600–900 had made it one per 1,200–1,800.
    const max = this.o.maxBatchRecords;
    const batch = this.pending.length <= max ? this.pending : this.pending.slice(0, max);
    this.pending = batch === this.pending ? [] : this.pending.slice(batch.length);
    const invalid: [number, string][] = [];
    let valid = 0;
    for (let i = 0; i < batch.length; i++) {
      const why = batch[i]!.invalid;
      if (why === undefined) valid++;
      else invalid.push([i, why]);
    }
    if (valid === 0) {
      this.counts.rejected += invalid.length;
      this.notify(() => this.events.batch({ ok: true, count: batch.length, firstSeq: this.seq + 1, hashes: '', invalid }));
      return;
    }
    if (this.needsRoll()) {
      try {
        await this.roll();
      } catch (err) {
        this.rejectBatch(batch.length, invalid, this.failed(err, 'cannot start a new audit segment'));
        return;
      }
    }
    const before = this.records.state();
    const firstSeq = this.seq + 1;
    const firstTimeMs = batch.find((r) => r.invalid === undefined)!.timeMs;
    const { data, hashes } = this.records.chain(batch, valid);
    try {
      this.counts.writes++;
      await this.segment.append(data);
      if (this.o.durability === 'strict') {
        this.counts.syncs++;
        await this.segment.datasync();
      }
    } catch (err) {
      this.records.restore(before);
      try {
        await this.segment.truncate(this.segmentBytes);
      } catch (truncErr) {
        this.broken = new AuditWriteError('io', `cannot cut a failed write from ${segmentPath(this.setup.dir, this.active)}`, truncErr);
      }
      this.rejectBatch(batch.length, invalid, this.failed(err, `cannot write ${valid} audit records`));
      return;
    }
    this.segmentBytes += data.length;
    this.segmentFirstTimeMs ??= firstTimeMs;
    this.counts.appended += valid;
    this.counts.rejected += invalid.length;
    if (this.o.durability === 'batched') {
      this.unsynced = true;
      this.scheduleSync();
    }
    this.recovered();
    this.notify(() => this.events.batch({ ok: true, count: batch.length, firstSeq, hashes, invalid }));
  }

  private rejectBatch(count: number, invalid: [number, string][], error: AuditWriteError): void {
    this.counts.rejected += count;
    this.notify(() => this.events.batch({ ok: false, count, error, invalid }));
  }

  private rejectRun(records: readonly QueuedRecord[], error: AuditWriteError): void {
    if (records.length === 0) return;
    const invalid: [number, string][] = [];
    records.forEach((r, i) => {
      if (r.invalid !== undefined) invalid.push([i, r.invalid]);
    });
    this.rejectBatch(records.length, invalid, error);
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
        size: this.records.seq,
        root: this.records.frontier.root().toString('hex'),
        frontier: this.records.frontier.hexes(),
        lastHash: this.records.lastHash,
        prev,
        time: new Date(this.now()).toISOString(),
        keyId: this.setup.keyId,
      },
      this.setup.privateKey,
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
    if (notify) this.notify(() => this.events.checkpoint(cp));
  }

  /** With a store key, a new segment is sealed (seal.ts); one begun without it stays as it is. */
  private async openSegment(file: string): Promise<AppendFile> {
    const key = this.setup.sealKey;
    if (key && (!existsSync(file) || statSync(file).size === 0 || startsSealed(file))) return SealedAppendFile.open(this.io, file, key, this.setup.native);
    return this.io.openAppend(file);
  }

  /** Seals the active segment with the next one's opening checkpoint, then switches to it. */
  private async roll(): Promise<void> {
    const dir = this.setup.dir;
    const next = this.active + 1;
    const ckPath = checkpointsPath(dir, next);
    const segPath = segmentPath(dir, next);
    let ck: AppendFile | undefined;
    let seg: AppendFile | undefined;
    const saved = { bytes: this.checkpointBytes, last: this.last, lastText: this.lastText };
    try {
      ck = await this.io.openAppend(ckPath);
      this.checkpointBytes = 0;
      await this.appendCheckpoint(this.makeCheckpoint(), false, ck);
      seg = await this.openSegment(segPath);
      await this.io.syncDirectory(dir);
    } catch (err) {
      this.checkpointBytes = saved.bytes;
      this.last = saved.last;
      this.lastText = saved.lastText;
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
    this.notify(() => this.events.checkpoint(cp));
  }

  private failed(err: unknown, what: string): AuditWriteError {
    const error = err instanceof AuditWriteError ? err : new AuditWriteError('io', `${what}: ${systemCode(err) ?? 'error'}`, err);
    this.isHealthy = false;
    this.notify(() => this.events.health(false, error)); // every failure: the host keeps the last error
    return error;
  }

  private recovered(): void {
    if (this.isHealthy || this.broken) return;
    this.isHealthy = true;
    this.notify(() => this.events.health(true, undefined));
  }

  private notify(call: () => void): void {
    try {
      call();
    } catch {
      // A listener's failure must not stop the writer.
    }
  }
}
