// Findings become alerts: one per incident (server, type, severity, incident key) with a count,
// not one per packet. The first finding of an incident is written at once and notified; later
// ones are counted in memory and added to the stored alert every half second.
import { randomUUID } from 'node:crypto';
import { ALERT_KINDS } from './alert-types.js';
import type { Finding } from './finding.js';
import type { Alert, AlertState, NewAlert } from './alert.js';
import type { AlertRecords } from './store.js';

export interface AlertSink {
  /** A new alert was stored (not a repeat of an open one). */
  created(alert: Alert): void;
  error(err: Error, what: string): void;
}

interface Open {
  id: Promise<string | null>;
  pending: number;
  lastSeen: number;
}

const FLUSH_MS = 500;

export class AlertStore {
  private readonly open = new Map<string, Open>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly repo: AlertRecords,
    private readonly serverId: (server: string) => number | undefined,
    private readonly sink: AlertSink,
  ) {}

  add(f: Finding): void {
    const kind = ALERT_KINDS[f.kind];
    const key = `${f.server}\u0000${kind.type}\u0000${kind.severity}\u0000${f.incidentKey}`;
    const hit = this.open.get(key);
    if (hit) {
      hit.pending += f.count;
      hit.lastSeen = Math.max(hit.lastSeen, f.timeMs);
      this.schedule();
      return;
    }
    // A repeat of an incident whose alert was dismissed or resolved stays closed; the detector
    // reports a fresh incident once its window has passed.
    if (f.description === '') return;
    const serverId = this.serverId(f.server);
    if (serverId === undefined) return;
    const at = new Date(f.timeMs).toISOString();
    const alert: NewAlert = {
      id: randomUUID(),
      serverId,
      server: f.server,
      incidentKey: f.incidentKey,
      type: kind.type,
      severity: kind.severity,
      title: `${kind.title} on server ${f.server}`,
      description: f.description,
      tactic: kind.tactic,
      principal: f.principal,
      sourceAddress: f.sourceAddress,
      location: f.location ?? null,
      firstSeen: at,
      lastSeen: at,
      count: f.count,
      evidence: f.evidence,
      recommendedAction: kind.recommendedAction,
    };
    const entry: Open = { id: Promise.resolve(null), pending: 0, lastSeen: f.timeMs };
    entry.id = this.repo.raise(alert).then(
      (r) => {
        if (r.created) this.sink.created({ ...alert, id: r.id, state: 'Active', stateChangedBy: null, stateChangedAt: null });
        return r.id;
      },
      (err: Error) => {
        this.open.delete(key);
        this.sink.error(err, 'could not store an alert');
        return null;
      },
    );
    this.open.set(key, entry);
  }

  /** Dismiss or resolve: the incident is closed, so a new finding opens a new alert. */
  async setState(server: string, id: string, state: AlertState, by: string): Promise<Alert | null> {
    const alert = await this.repo.setState(server, id, state, by);
    if (alert && state !== 'Active') {
      for (const [k, v] of this.open) if ((await v.id) === id) this.open.delete(k);
    }
    return alert;
  }

  /** Forgets open incidents of a server (policy off, server gone). */
  forgetServer(server: string): void {
    for (const k of [...this.open.keys()]) if (k.startsWith(`${server}\u0000`)) this.open.delete(k);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushing = this.flushing.then(() => this.flush());
    }, FLUSH_MS);
    this.timer.unref();
  }

  async flush(): Promise<void> {
    for (const [key, entry] of this.open) {
      if (entry.pending === 0) continue;
      const n = entry.pending;
      entry.pending = 0;
      const id = await entry.id;
      if (!id) continue;
      await this.repo.addCount(id, n, new Date(entry.lastSeen).toISOString()).catch((err: Error) => {
        this.open.delete(key);
        this.sink.error(err, 'could not update an alert');
      });
    }
    // Incidents quiet for an hour are closed in memory: the next finding reopens the stored
    // alert if it is still Active (the upsert finds it), or starts a new one.
    const cutoff = Date.now() - 3600_000;
    for (const [k, v] of this.open) if (v.lastSeen < cutoff && v.pending === 0) this.open.delete(k);
  }

  async close(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.flushing;
    await this.flush();
  }
}
