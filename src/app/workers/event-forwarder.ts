// A gateway process that is not the platform's sends its events (and the session index's
// changes) to the platform process, which writes the one audit log and runs the detectors.
// Events go in batches, one per turn of the event loop. Under strict durability a reply waits
// until the platform process says the batch holding its records is on disk: this is the
// process's AuditGate.
import type { AnyEvent } from '../../events/types.js';
import type { AuditGate } from '../../gateway/context.js';
import { SessionIndex, type IndexedSession } from '../../gateway/session-index.js';
import type { FromWorker } from './messages.js';
import { IndexOutbox } from './index-ops.js';

/** Index changes with no event to go with wait this long (ms) for more: with transaction pooling
 * every transaction lends and returns, and a message per turn of the event loop cost more than
 * the changes. They join pgAudit lines, which wait a second for them (PgAuditIngest's holdMs). */
const INDEX_WINDOW_MS = 20;

export class EventForwarder implements AuditGate, IndexSink {
  private events: AnyEvent[] = [];
  private readonly index = new IndexOutbox();
  private scheduled = false;
  private indexTimer: NodeJS.Timeout | null = null;
  private sent = 0;
  private acked = 0;
  private accepts = true;
  /** Waiting for an ack, by batch: resolved in order as acks come. */
  private readonly waiting: { seq: number; promise: Promise<void>; resolve: () => void }[] = [];

  constructor(
    private readonly send: (m: FromWorker) => void,
    readonly strict: boolean,
  ) {}

  event(e: AnyEvent): void {
    this.events.push(e);
    if (e.type === 'session.ended') this.index.ended(e.connection.connId);
    this.schedule();
  }

  lent(s: IndexedSession, pid: number, at: number): void {
    this.index.lent(s, pid, at);
    this.scheduleIndex();
  }

  returned(s: IndexedSession, pid: number, at: number): void {
    this.index.returned(s, pid, at);
    this.scheduleIndex();
  }

  /** Sends what is waiting now (also at stop). */
  flush(): void {
    this.scheduled = false;
    if (this.indexTimer !== null) {
      clearTimeout(this.indexTimer);
      this.indexTimer = null;
    }
    if (!this.events.length && this.index.empty) return;
    const seq = ++this.sent;
    this.send({ type: 'events', seq, events: this.events, index: this.index.take(), strict: this.strict });
    this.events = [];
  }

  get acceptsConnections(): boolean {
    return this.accepts;
  }

  /** failClosed: the platform process says whether its audit log can be written. */
  setAccepts(accepts: boolean): void {
    this.accepts = accepts;
  }

  ack(seq: number): void {
    if (seq > this.acked) this.acked = seq;
    while (this.waiting.length && this.waiting[0]!.seq <= this.acked) this.waiting.shift()!.resolve();
  }

  pendingDurable(): Promise<void> | null {
    if (!this.strict) return null;
    // Events not sent yet go in the next batch (index changes are not audit records).
    const target = this.events.length ? this.sent + 1 : this.sent;
    if (target <= this.acked) return null;
    const last = this.waiting[this.waiting.length - 1];
    if (last?.seq === target) return last.promise;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.waiting.push({ seq: target, promise, resolve });
    return promise;
  }

  durable(): Promise<void> {
    return this.pendingDurable() ?? Promise.resolve();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private scheduleIndex(): void {
    if (this.scheduled || this.indexTimer !== null) return;
    this.indexTimer = setTimeout(() => this.flush(), INDEX_WINDOW_MS);
    this.indexTimer.unref();
  }
}

/** Where the session index of a process that is not the platform's sends its changes. */
export interface IndexSink {
  lent(s: IndexedSession, pid: number, at: number): void;
  returned(s: IndexedSession, pid: number, at: number): void;
}

/** The session index of a gateway process that is not the platform's: its changes go to the
 * platform process (which joins pgAudit lines); nothing is kept here. */
export class ForwardingSessionIndex extends SessionIndex {
  constructor(private readonly out: IndexSink) {
    super();
  }

  override lent(s: IndexedSession, pid: number, at = Date.now()): void {
    this.out.lent(s, pid, at);
  }

  override returned(s: IndexedSession, pid: number, at = Date.now()): void {
    this.out.returned(s, pid, at);
  }
}
