// The platform's audit log: every event on the bus (connections, authentication, statements,
// admin actions, server lifecycle) appended to the tamper-evident store (audit/store), with the
// newest signed checkpoint exported next to it for copying off the host. The failure policy
// decides what an unwritable store means: failClosed refuses new connections, failOpen keeps
// serving and says so.
import { mkdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { openAuditStore, publicKeyPem, type AuditStore, type Durability } from './store/index.js';
import type { EventBus } from '../events/bus.js';
import type { AnyEvent } from '../events/types.js';
import { fitEvent } from './fit-event.js';

export type AuditFailurePolicy = 'failClosed' | 'failOpen';

/** The witness file is rewritten at most this often (ms), with the newest checkpoint: under load
 * a checkpoint comes every 1,000 records, several a second, and each rewrite costs the event loop
 * a file's open, write, close and rename. The file lags the newest checkpoint by at most that. */
const WITNESS_EVERY_MS = 1000;

export interface AuditLogOptions {
  readonly dir: string;
  readonly keyFile: string;
  /** Where the newest exported checkpoint is written (witness copy source). */
  readonly witnessFile: string;
  readonly durability: Durability;
  readonly policy: AuditFailurePolicy;
  readonly log: Logger;
  /**
   * The log stopped recording events: the store cannot write (disk full, I/O error) or events
   * are being dropped (its queue is full). Called once per unhealthy period, under either policy
   * (failOpen keeps serving: this is where it raises the alert). Must not throw.
   */
  readonly onFailure?: (err: Error) => void;
  /** The log records events again after onFailure. */
  readonly onRecovered?: () => void;
  /** Bytes a text field keeps when an event is too large for the store (default 8 KiB). */
  readonly maxTextBytes?: number;
  /** The store key: its segments are sealed (src/audit/store/seal.ts), for a dir on no encrypted volume. */
  readonly sealKey?: Uint8Array;
}

export class AuditLog {
  private unsubscribe: (() => void) | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  /** Ticket of the last event handed to the store (see AuditStore.enqueue). */
  private lastTicket = 0;
  /** The pendingDurable() promise for lastTicket, shared by every caller until it changes. */
  private durableFor = { ticket: 0, promise: null as Promise<void> | null };
  /** Inside an unhealthy period (onFailure called, onRecovered not yet). */
  private failing = false;
  /** A dropped event: the period ends once an event accepted after it is written. */
  private recoveryProbe = 0;
  private witnessNext: Parameters<AuditStore['exportCheckpoint']>[0] | null = null;
  private witnessBusy = false;
  /** The next rewrite of the witness file, when one waits for WITNESS_EVERY_MS to pass. */
  private witnessTimer: NodeJS.Timeout | null = null;
  /** When the witness file was last rewritten (ms). */
  private witnessAt = 0;

  private constructor(
    readonly store: AuditStore,
    private readonly options: AuditLogOptions,
  ) {}

  static async open(options: AuditLogOptions, bus: EventBus): Promise<AuditLog> {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    mkdirSync(path.dirname(options.witnessFile), { recursive: true, mode: 0o755 });
    let log: AuditLog | null = null;
    const store = await openAuditStore({
      dir: options.dir,
      keyFile: options.keyFile,
      durability: options.durability,
      ...(options.sealKey ? { sealKey: options.sealKey } : {}),
      onCheckpoint: (cp) => log?.exportWitness(cp),
      onHealthChange: (healthy, err) => {
        if (healthy) options.log.warn('audit store writable again');
        else options.log.error({ err }, `audit store cannot write (${options.policy})`);
        if (!log) return;
        if (healthy) log.recovered();
        else log.failed(err ?? new Error('the audit store cannot write'));
      },
    });
    log = new AuditLog(store, options);
    log.unsubscribe = bus.subscribe((e) => log!.record(e));
    return log;
  }

  get dir(): string {
    return this.options.dir;
  }

  /** False while the store cannot write. */
  get healthy(): boolean {
    return this.store.healthy;
  }

  /** Under failClosed, an unwritable log refuses new connections. */
  get acceptsConnections(): boolean {
    return this.options.policy === 'failOpen' || this.store.healthy;
  }

  /** Under strict durability, resolves once every event appended so far is on disk. */
  durable(): Promise<void> {
    return this.pendingDurable() ?? Promise.resolve();
  }

  get strict(): boolean {
    return this.options.durability === 'strict';
  }

  pendingDurable(): Promise<void> | null {
    const ticket = this.lastTicket;
    if (!this.strict || this.store.isSettled(ticket)) return null;
    // Asked for after every server chunk of a session: one promise per new event, not per call.
    if (this.durableFor.ticket !== ticket || this.durableFor.promise === null) {
      this.durableFor = { ticket, promise: this.store.settled(ticket) };
    }
    return this.durableFor.promise;
  }

  get publicKeyPem(): string {
    return publicKeyPem(this.store.publicKey);
  }

  /** Appends one event; resolves when the store has it (durable under strict durability). */
  append(event: AnyEvent): Promise<void> {
    const ticket = this.record(event);
    return ticket === 0 ? Promise.resolve() : this.store.settled(ticket);
  }

  /** Hands the store an event given as its canonical JSON in UTF-8 (the native relay's statement
   * records) without waiting. One the store refuses as invalid is parsed and recorded as an event
   * (cut down, or its loss recorded), as any other. */
  private appendRecord(json: Uint8Array): void {
    const ticket = this.store.enqueueCanonical(json);
    if (typeof ticket === 'number') {
      this.accepted(ticket);
      return;
    }
    if (ticket.reason === 'invalid-event') {
      let event: AnyEvent;
      try {
        event = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8')) as AnyEvent;
      } catch {
        // Not JSON (a bug): lost, and said so (alert, then audit.interrupted with the count).
        this.options.log.error({ reason: ticket.message }, 'a statement record could not be written');
        this.failed(ticket);
        return;
      }
      this.record(event);
      return;
    }
    if (ticket.reason === 'queue-full') this.failed(ticket);
  }

  /** appendRecord() of `count` records in a row, each as its length (u32 LE) and its JSON (the
   * native relay's runs): taken by the store together, or, when it does not take them all (one
   * is invalid, the queue is full, it is closed or broken), one by one as appendRecord does. */
  appendRecords(data: Buffer, count: number): void {
    const ticket = this.store.enqueueCanonicalRun(data, count);
    if (ticket > 0) {
      this.accepted(ticket);
      return;
    }
    for (let i = 0, at = 0; i < count; i++) {
      const n = data.readUInt32LE(at);
      this.appendRecord(data.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
  }

  /** Hands one event to the store without waiting (what the bus does); its ticket, 0 when dropped. */
  private record(event: AnyEvent): number {
    // The store's canonical JSON drops undefined fields itself.
    let ticket = this.store.enqueue(event);
    if (typeof ticket !== 'number' && ticket.reason === 'invalid-event') {
      // Too large (or not plain data): cut down, with the measure of what was cut, and tried again.
      let fitted: object | null = null;
      try {
        fitted = fitEvent(event, this.options.maxTextBytes ?? 8 * 1024);
      } catch {
        fitted = null;
      }
      if (fitted !== null) ticket = this.store.enqueue(fitted);
      if (typeof ticket !== 'number') {
        // Never dropped silently: the AuditLogFailure path (alert now, audit.interrupted with
        // the count of lost events once a record is written again).
        this.options.log.error({ type: event.type, reason: ticket.message }, 'an audit event could not be written');
        this.failed(ticket);
        // And the log itself says which record is missing.
        const dropped = this.store.enqueue(droppedRecord(event, ticket.message));
        return typeof dropped === 'number' ? (this.lastTicket = dropped) : 0;
      }
    }
    if (typeof ticket !== 'number') {
      // I/O failures come through the store's health; a full queue drops events: a failure too.
      if (ticket.reason === 'queue-full') this.failed(ticket);
      return 0;
    }
    this.accepted(ticket);
    return ticket;
  }

  /** The store accepted an event: the last ticket, and the end of an unhealthy period once it is written. */
  private accepted(ticket: number): void {
    this.lastTicket = ticket;
    if (this.failing && this.recoveryProbe === 0 && this.store.healthy) {
      this.recoveryProbe = ticket;
      void this.store.settled(ticket).then(() => {
        this.recoveryProbe = 0;
        if (this.store.healthy) this.recovered();
      });
    }
  }

  private failed(err: Error): void {
    if (this.failing) return;
    this.failing = true;
    try {
      this.options.onFailure?.(err);
    } catch (e) {
      this.options.log.error({ err: e }, 'the audit failure handler failed');
    }
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    try {
      this.options.onRecovered?.();
    } catch (e) {
      this.options.log.error({ err: e }, 'the audit recovery handler failed');
    }
  }

  /** The witness file gets the newest checkpoint, off the event loop's critical path: one write at
   * a time, at most one every WITNESS_EVERY_MS, the newest checkpoint wins. */
  private exportWitness(cp: Parameters<AuditStore['exportCheckpoint']>[0]): void {
    this.witnessNext = cp;
    if (this.witnessBusy || this.witnessTimer !== null) return;
    const wait = this.witnessAt + WITNESS_EVERY_MS - Date.now();
    if (wait > 0) {
      this.witnessTimer = setTimeout(() => {
        this.witnessTimer = null;
        this.writeWitness();
      }, wait);
      this.witnessTimer.unref();
    } else this.writeWitness();
  }

  private writeWitness(): void {
    const next = this.witnessNext;
    if (this.witnessBusy || next === null) return;
    this.witnessNext = null;
    this.witnessBusy = true;
    this.witnessAt = Date.now();
    void (async () => {
      try {
        const tmp = `${this.options.witnessFile}.tmp`;
        await writeFile(tmp, `${JSON.stringify(this.store.exportCheckpoint(next), null, 2)}\n`, { mode: 0o644 });
        await rename(tmp, this.options.witnessFile);
      } catch (err) {
        this.options.log.error({ err }, 'could not write the audit witness checkpoint');
      }
      this.witnessBusy = false;
      if (this.witnessNext !== null) this.exportWitness(this.witnessNext);
    })();
  }

  /** Deletes whole segments older than `days` (the chain stays verifiable from the first kept
   * checkpoint) and records that it did. */
  async applyRetention(days: number, bus: EventBus): Promise<void> {
    const cut = new Date(Date.now() - days * 86_400_000);
    const r = await this.store.applyRetention(cut);
    if (r.deleted.length) {
      bus.publish({
        type: 'audit.retention',
        time: new Date().toISOString(),
        details: { retentionDays: days, deleted: [...r.deleted], firstSeq: r.firstSeq ?? null, anchorCheckpoint: r.anchor?.index ?? null },
      });
    }
  }

  /** Runs retention now and then every `everyMs` (daily by default); `days()` is read each time. */
  scheduleRetention(days: () => number, bus: EventBus, everyMs = 86_400_000): void {
    const run = () => void this.applyRetention(days(), bus).catch((err: Error) => this.options.log.error({ err }, 'audit retention failed'));
    run();
    this.retentionTimer = setInterval(run, everyMs);
    this.retentionTimer.unref();
  }

  async close(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.unsubscribe?.();
    await this.store.close(); // writes everything handed over so far, and a last checkpoint
    // The last checkpoint goes to the witness file now, not when WITNESS_EVERY_MS has passed.
    while (this.witnessBusy || this.witnessNext !== null) {
      if (this.witnessTimer !== null) {
        clearTimeout(this.witnessTimer);
        this.witnessTimer = null;
      }
      this.writeWitness();
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** What the log keeps of an event it could not write at all. */
function droppedRecord(event: AnyEvent, reason: string): AnyEvent {
  const e = event as { type: string; server?: unknown; connection?: { connId?: unknown }; sessionId?: unknown };
  return {
    type: 'audit.record-dropped',
    time: new Date().toISOString(),
    details: {
      eventType: String(e.type).slice(0, 64),
      reason: reason.slice(0, 256),
      ...(typeof e.server === 'string' ? { server: e.server.slice(0, 128) } : {}),
      ...(typeof e.connection?.connId === 'string' ? { connId: e.connection.connId.slice(0, 64) } : {}),
      ...(typeof e.sessionId === 'string' ? { connId: e.sessionId.slice(0, 64) } : {}),
    },
  };
}
