// The audit store: append-only segments of hash-chained records, signed checkpoints, group commit
// (FORMAT.md). This is the caller's side (opened by open-store.ts). append() only checks the
// event and serializes it (event-text.ts): in canonical form already when the event is plain data
// (every event of the platform), else with the native JSON.stringify; queued events cross to the
// writer together (outbox.ts, writer-link.ts), and everything else (canonical JSON of the events
// that need it, SHA-256, the Merkle frontier, checkpoints and signatures, writes and fdatasyncs)
// happens in the writer (writer.ts), which runs in a worker thread (writer-worker.ts). Results
// come back in order, one message per written batch. When the options carry their own file
// operations or clock (tests), the writer runs in this thread instead, behind the same messages
// (writer-host.ts).
import type { Checkpoint } from './checkpoint.js';
import { exportCheckpoint, type ExportedCheckpoint } from './checkpoint-export.js';
import { eventText } from './event-text.js';
import { AuditWriteError } from './errors.js';
import { nodeIo } from './io.js';
import type { DirectoryLock } from './lock.js';
import type { AuditStoreOptions, ResolvedOptions } from './options.js';
import type { RecoveryReport } from './recover.js';
import { deleteOldSegments, type RetentionResult } from './retention.js';
import type { SigningKey } from './signing-key.js';
import { Outbox } from './outbox.js';
import { Tickets, type AppendResult } from './tickets.js';
import { deserializeError, type FromWriter, type ToWriter, type WriterState } from './writer-host.js';
import { WriterLink } from './writer-link.js';

export type { AppendResult } from './tickets.js';

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

export class AuditStore {
  readonly dir: string;
  readonly durability: 'strict' | 'batched';
  private readonly now: () => number;
  private inThread: boolean;

  private link: WriterLink | null = null;
  private send: (message: ToWriter, transfer?: ArrayBuffer[]) => void = () => undefined;

  // What the writer last reported.
  private seq = 0;
  private active = 1;
  private last!: Checkpoint;
  private recoveryReport!: RecoveryReport;
  private writerCounts = { appended: 0, rejected: 0, writes: 0, syncs: 0, checkpoints: 0 };
  private isHealthy = true;
  private broken: AuditWriteError | undefined;
  private error: AuditWriteError | undefined;
  /** Appends refused here, before reaching the writer. */
  private refused = 0;

  // Events of this turn of the event loop, not yet sent.
  private readonly outbox = new Outbox({
    strict: () => this.durability === 'strict',
    inThread: () => this.inThread,
    send: (m, transfer) => this.send(m, transfer),
    issued: () => this.tickets.issued,
    settledThrough: () => this.tickets.settledThrough,
    wantsHashes: () => this.tickets.waiters > 0,
  });
  private readonly tickets = new Tickets();
  private checkpointRequests = new Map<number, { resolve: (c: Checkpoint) => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  private exportKey: ExportedCheckpoint | undefined;

  private opening: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private closing = false;
  /** The writer thread is gone (failed or exited). */
  private gone = false;
  private closed: (() => void) | null = null;

  /** @internal use openAuditStore */
  constructor(
    private readonly options: AuditStoreOptions,
    private readonly o: ResolvedOptions,
    private readonly key: SigningKey,
    private readonly lock: DirectoryLock,
  ) {
    this.dir = options.dir;
    this.durability = o.durability;
    this.now = options.now ?? Date.now;
    this.inThread = options.io !== undefined || options.now !== undefined;
  }

  /** @internal */
  async start(): Promise<void> {
    const opened = new Promise<void>((resolve, reject) => (this.opening = { resolve, reject }));
    const link = WriterLink.open(
      this.inThread,
      { io: this.options.io ?? nodeIo, now: this.now },
      {
        message: (m) => this.receive(m),
        failed: (err) => this.writerLost(`the audit writer thread failed: ${err.message}`),
        exited: (code) => {
          if (this.closed === null) this.writerLost(`the audit writer thread exited (code ${code})`);
          else this.finishClose();
        },
      },
    );
    this.link = link;
    this.inThread = link.inThread;
    this.send = link.send;
    this.send({
      t: 'init',
      dir: this.dir,
      options: this.o,
      privateKey: this.key.privateKey,
      publicKey: this.key.publicKey,
      keyId: this.key.keyId,
      ...(this.options.sealKey ? { sealKey: this.options.sealKey } : {}),
      native: this.options.native ?? process.env.PGWARDEN_AUDIT_NATIVE !== '0',
    });
    try {
      await opened;
    } catch (err) {
      await link.terminate();
      throw err;
    }
    this.reference();
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
    const c = this.writerCounts;
    return {
      lastSeq: this.seq,
      activeSegment: this.active,
      pending: this.tickets.issued - this.tickets.settledThrough,
      appended: c.appended,
      rejected: c.rejected + this.refused,
      writes: c.writes,
      syncs: c.syncs,
      checkpoints: c.checkpoints,
    };
  }

  /**
   * Queues one event (any JSON object). Resolves with its seq and hash once written (batched) or
   * written and fdatasync'ed (strict); rejects with AuditWriteError.
   */
  append(event: object): Promise<AppendResult> {
    const ticket = this.enqueue(event);
    if (typeof ticket !== 'number') return Promise.reject(ticket);
    return this.tickets.wait(ticket);
  }

  /**
   * @internal The promise-free form of append() for a caller that records many events and waits
   * for few (AuditLog): the event's ticket (results come in ticket order, see settled()), or the
   * error append() would have rejected with at once.
   */
  enqueue(event: object): number | AuditWriteError {
    const refused = this.admit();
    if (refused) return refused;
    const made = eventText(event, this.o.maxRecordBytes);
    if (typeof made === 'string') return this.refuse('invalid-event', made);
    const { text, canonical } = made;
    const now = this.now();
    this.outbox.add(text, canonical, now);
    if (!this.link?.holding) this.reference();
    return this.tickets.issue();
  }

  /**
   * @internal enqueue() for an event given as its canonical JSON in UTF-8 (an object's, by
   * construction: the native relay's statement records): copied to the writer without a string.
   */
  enqueueCanonical(json: Uint8Array): number | AuditWriteError {
    const refused = this.admit();
    if (refused) return refused;
    if (json[0] !== 0x7b) return this.refuse('invalid-event', 'an audit event must be a JSON object');
    if (json.length > this.o.maxRecordBytes) return this.refuse('invalid-event', `the audit event is larger than ${this.o.maxRecordBytes} bytes`);
    this.outbox.addBytes(json, this.now());
    if (!this.link?.holding) this.reference();
    return this.tickets.issue();
  }

  /**
   * @internal enqueueCanonical() of `count` events in a row, each as its length (u32 LE) and its
   * canonical JSON: all of them or none. The last one's ticket, or 0 when they were not taken
   * (closed, broken, the queue too full for them all, one not an object or too large).
   */
  enqueueCanonicalRun(data: Buffer, count: number): number {
    if (count < 1 || this.closing || this.broken || this.tickets.issued - this.tickets.settledThrough + count > this.o.maxPendingRecords) return 0;
    for (let i = 0, at = 0; i < count; i++) {
      const n = at + 4 <= data.length ? data.readUInt32LE(at) : -1;
      if (n < 1 || n > this.o.maxRecordBytes || at + 4 + n > data.length || data[at + 4] !== 0x7b) return 0;
      at += 4 + n;
    }
    this.outbox.addRun(data, count, this.now());
    if (!this.link?.holding) this.reference();
    return this.tickets.issueRun(count);
  }

  /** @internal Ticket of the last event accepted (0: none yet). */
  get lastTicket(): number {
    return this.tickets.issued;
  }

  /** @internal True once the event with this ticket was written (and synced, if strict) or rejected. */
  isSettled(ticket: number): boolean {
    return this.tickets.isSettled(ticket);
  }

  /** @internal Resolves (never rejects) once every event up to this ticket was written or rejected. */
  settled(ticket: number): Promise<void> {
    return this.tickets.settled(ticket);
  }

  /** Writes a checkpoint now (unless the last one already covers every record) and returns it. */
  checkpoint(): Promise<Checkpoint> {
    if (this.closing) return Promise.reject(new AuditWriteError('closed', 'the audit store is closed'));
    if (this.broken) return Promise.reject(this.broken);
    this.outbox.flush(); // the events appended so far go first
    const id = this.nextRequest++;
    const p = new Promise<Checkpoint>((resolve, reject) => this.checkpointRequests.set(id, { resolve, reject }));
    this.reference();
    this.send({ t: 'checkpoint', id });
    return p;
  }

  /** The portable form of a checkpoint (default: the last) for a witness off the host. */
  exportCheckpoint(checkpoint: Checkpoint = this.last): ExportedCheckpoint {
    // The key's PEM and id, exported once: every checkpoint (one per 1,000 records) is exported.
    this.exportKey ??= exportCheckpoint(checkpoint, this.key.publicKey);
    return { ...this.exportKey, checkpoint };
  }

  /** Deletes whole segments, oldest first, whose last record is older than `olderThan`. */
  applyRetention(olderThan: Date): Promise<RetentionResult> {
    // The active segment as last reported: the writer may have moved on, never back.
    return deleteOldSegments(this.dir, this.active, olderThan, this.o.maxRecordBytes, this.options.io ?? nodeIo);
  }

  /** Writes what is queued, a final checkpoint, fdatasyncs and releases the directory. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.gone) {
      await this.lock.release(); // the writer thread died: nothing left to write or close
      return;
    }
    this.outbox.flush();
    const done = new Promise<void>((resolve) => (this.closed = resolve));
    // Referenced until the writer says it closed: a batch settled meanwhile must not unref it,
    // or a process with nothing else left to do ends here, its store and volume left open.
    this.link?.hold(true);
    this.send({ t: 'close' });
    await done;
    await this.lock.release();
  }

  // ---- messages ----

  private receive(m: FromWriter): void {
    switch (m.t) {
      case 'ready':
        this.recoveryReport = m.recovery;
        this.last = m.last;
        this.mirror(m.state);
        this.opening?.resolve();
        this.opening = null;
        return;
      case 'openFailed':
        this.opening?.reject(deserializeError(m.error));
        this.opening = null;
        return;
      case 'batch':
        this.mirror(m.state);
        this.settleBatch(m);
        return;
      case 'checkpointed':
        this.mirror(m.state);
        this.last = m.checkpoint;
        this.notify(() => this.options.onCheckpoint?.(m.checkpoint));
        return;
      case 'checkpointDone': {
        const r = this.checkpointRequests.get(m.id);
        this.checkpointRequests.delete(m.id);
        if (m.checkpoint) r?.resolve(m.checkpoint);
        else r?.reject(deserializeError(m.error!));
        this.unreferenceWhenIdle();
        return;
      }
      case 'health':
        if (m.healthy) {
          if (!this.isHealthy) {
            this.isHealthy = true;
            this.notify(() => this.options.onHealthChange?.(true, undefined));
          }
        } else {
          const error = deserializeError(m.error!) as AuditWriteError;
          this.error = error;
          if (this.isHealthy) {
            this.isHealthy = false;
            this.notify(() => this.options.onHealthChange?.(false, error));
          }
        }
        return;
      case 'broken':
        this.broken = deserializeError(m.error) as AuditWriteError;
        return;
      case 'closed':
        this.mirror(m.state);
        this.finishClose();
        // Its files are closed: the thread is done (it also ends by itself, having closed its port).
        void this.link?.terminate();
        return;
    }
  }

  private settleBatch(m: Extract<FromWriter, { t: 'batch' }>): void {
    this.tickets.settle(m);
    this.outbox.settled();
    this.unreferenceWhenIdle();
  }

  private mirror(state: WriterState): void {
    this.seq = state.seq;
    this.active = state.active;
    this.writerCounts = state.counts;
  }

  /** Why no more events are taken now (closed, broken, the queue full), or null. */
  private admit(): AuditWriteError | null {
    if (this.closing) return this.refuse('closed', 'the audit store is closed');
    if (this.broken) return this.refuse('io', `the audit store cannot write until reopened: ${this.broken.message}`, this.broken);
    if (this.tickets.issued - this.tickets.settledThrough >= this.o.maxPendingRecords)
      return this.refuse('queue-full', `more than ${this.o.maxPendingRecords} audit records are waiting to be written`);
    return null;
  }

  private refuse(reason: AuditWriteError['reason'], message: string, cause?: unknown): AuditWriteError {
    this.refused++;
    return new AuditWriteError(reason, message, cause);
  }

  /** The writer thread died: nothing more will be written until the store is reopened. */
  private writerLost(message: string): void {
    this.gone = true;
    if (this.closed !== null) {
      this.finishClose();
      return;
    }
    const error = new AuditWriteError('io', message);
    if (this.recoveryReport === undefined) {
      // Still opening (or the open failed, which was reported already).
      this.opening?.reject(error);
      this.opening = null;
      return;
    }
    this.broken ??= error;
    this.error = error;
    if (this.isHealthy) {
      this.isHealthy = false;
      this.notify(() => this.options.onHealthChange?.(false, error));
    }
    const pending = this.tickets.issued - this.tickets.settledThrough;
    if (pending > 0)
      this.settleBatch({
        t: 'batch',
        count: pending,
        ok: false,
        firstSeq: 0,
        hashes: '',
        invalid: [],
        error: { name: 'AuditWriteError', message, reason: 'io' },
        state: { seq: this.seq, active: this.active, counts: this.writerCounts },
      });
    for (const r of this.checkpointRequests.values()) r.reject(error);
    this.checkpointRequests.clear();
    this.outbox.clear();
  }

  private finishClose(): void {
    const closed = this.closed;
    this.closed = () => undefined;
    closed?.();
  }

  /** The writer thread keeps the process alive only while something waits for it. */
  private reference(): void {
    if (this.closing) return;
    this.link?.hold(this.tickets.issued > this.tickets.settledThrough || this.checkpointRequests.size > 0 || this.outbox.size > 0);
  }

  private unreferenceWhenIdle(): void {
    if (this.link?.holding && this.tickets.issued === this.tickets.settledThrough && this.checkpointRequests.size === 0 && this.outbox.size === 0)
      this.reference();
  }

  private notify(call: () => void): void {
    try {
      call();
    } catch {
      // A listener's failure must not stop the store.
    }
  }
}
