// Refusals before authentication, counted: a Prometheus counter per reason at once, and in the
// audit log one summary event per interval (a flood of a million sockets writes a handful of
// records, not a million). The summary keeps the addresses refused most, at most TOP of them,
// and counts at most MAX_TRACKED distinct addresses per interval so its own memory is bounded.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventBus } from '../events/bus.js';
import { now } from '../events/bus.js';

export type PreauthRefusalReason = 'global' | 'per-address' | 'descriptor-reserve' | 'first-byte-timeout';

const TOP = 10;
const MAX_TRACKED = 10_000;

export class PreauthReport {
  private readonly counter: Counter<'reason'>;
  readonly gauge: Gauge;
  private from: string | null = null;
  private total = 0;
  private readonly reasons = new Map<string, number>();
  private readonly addresses = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly bus: EventBus,
    metrics: Registry,
    private readonly intervalMs: number,
    openNow: () => number,
  ) {
    this.counter = new Counter({
      name: 'pgwarden_gateway_preauth_refused_total',
      help: 'Connections closed before authentication: over the pre-auth caps, in the descriptor reserve, or silent past the first-byte timeout.',
      labelNames: ['reason'],
      registers: [metrics],
    });
    this.gauge = new Gauge({
      name: 'pgwarden_gateway_preauth_connections',
      help: 'Connections accepted that have not authenticated yet.',
      registers: [metrics],
      collect() {
        this.set(openNow());
      },
    });
  }

  refused(reason: PreauthRefusalReason, bucket: string): void {
    this.counter.inc({ reason });
    this.from ??= now();
    this.total++;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
    const n = this.addresses.get(bucket);
    if (n !== undefined) this.addresses.set(bucket, n + 1);
    else if (this.addresses.size < MAX_TRACKED) this.addresses.set(bucket, 1);
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Publishes what the interval holds (also on close, so nothing counted is lost). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.total === 0 || this.from === null) return;
    const addresses = [...this.addresses.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, TOP)
      .map(([address, refused]) => ({ address, refused }));
    this.bus.publish({
      type: 'gateway.preauth_refused',
      time: now(),
      from: this.from,
      to: now(),
      refused: this.total,
      reasons: Object.fromEntries(this.reasons),
      addresses,
    });
    this.from = null;
    this.total = 0;
    this.reasons.clear();
    this.addresses.clear();
  }
}
