// The platform's audit log: every event on the bus (connections, authentication, statements,
// admin actions, server lifecycle) appended to the tamper-evident store (audit/store), with the
// newest signed checkpoint exported next to it for copying off the host. The failure policy
// decides what an unwritable store means: failClosed refuses new connections, failOpen keeps
// serving and says so.
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { openAuditStore, publicKeyPem, type AuditStore, type Durability } from './store/index.js';
import type { EventBus } from '../events/bus.js';
import type { AnyEvent } from '../events/types.js';

export type AuditFailurePolicy = 'failClosed' | 'failOpen';

export interface AuditLogOptions {
  readonly dir: string;
  readonly keyFile: string;
  /** Where the newest exported checkpoint is written (witness copy source). */
  readonly witnessFile: string;
  readonly durability: Durability;
  readonly policy: AuditFailurePolicy;
  readonly log: Logger;
}

export class AuditLog {
  private unsubscribe: (() => void) | null = null;
  /** Appends not yet acknowledged by the store, so close() can wait for them. */
  private readonly pending = new Set<Promise<unknown>>();
  private retentionTimer: NodeJS.Timeout | null = null;

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
      onCheckpoint: (cp) => log?.exportWitness(cp),
      onHealthChange: (healthy, err) =>
        healthy ? options.log.warn('audit store writable again') : options.log.error({ err }, `audit store cannot write (${options.policy})`),
    });
    log = new AuditLog(store, options);
    log.unsubscribe = bus.subscribe((e) => void log!.append(e));
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
    if (this.options.durability !== 'strict' || this.pending.size === 0) return Promise.resolve();
    return Promise.all([...this.pending]).then(() => undefined);
  }

  get strict(): boolean {
    return this.options.durability === 'strict';
  }

  pendingDurable(): Promise<void> | null {
    if (!this.strict || this.pending.size === 0) return null;
    return Promise.all([...this.pending]).then(() => undefined);
  }

  get publicKeyPem(): string {
    return publicKeyPem(this.store.publicKey);
  }

  /** Appends one event; resolves when the store has it (durable under strict durability). */
  append(event: AnyEvent): Promise<void> {
    // The store's canonical JSON drops undefined fields itself.
    const p = this.store.append(event).then(
      () => undefined,
      () => undefined, // health and the policy report it; the caller's session is not the place
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  private exportWitness(cp: Parameters<AuditStore['exportCheckpoint']>[0]): void {
    try {
      const tmp = `${this.options.witnessFile}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.store.exportCheckpoint(cp), null, 2)}\n`, { mode: 0o644 });
      renameSync(tmp, this.options.witnessFile);
    } catch (err) {
      this.options.log.error({ err }, 'could not write the audit witness checkpoint');
    }
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
    const run = () =>
      void this.applyRetention(days(), bus).catch((err: Error) => this.options.log.error({ err }, 'audit retention failed'));
    run();
    this.retentionTimer = setInterval(run, everyMs);
    this.retentionTimer.unref();
  }

  async close(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.unsubscribe?.();
    await Promise.all([...this.pending]);
    await this.store.close();
  }
}
