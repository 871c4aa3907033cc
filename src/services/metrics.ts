// Prometheus metrics of the platform; the gateway adds its own to the same registry.
import { AggregatorRegistry, Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import type { PoolStats, PoolStatsSource } from '../gateway/pool/types.js';

/** One process's metrics as prom-client gives them (getMetricsAsJSON). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** The platform's registry. With the gateway in several processes (`up --gateway-workers N`),
 * /metrics adds the other processes' gateway metrics to this process's (summed, as prom-client
 * aggregates a cluster's). */
export class PlatformRegistry extends Registry {
  private others: (() => Promise<MetricsJson[]>) | null = null;

  /** Where the other gateway processes' metrics are read, on each scrape. */
  addProcesses(read: () => Promise<MetricsJson[]>): void {
    this.others = read;
  }

  override async metrics(): Promise<string> {
    if (!this.others) return super.metrics();
    const all = [await this.getMetricsAsJSON(), ...(await this.others())];
    return AggregatorRegistry.aggregate(all).metrics();
  }
}

export function createMetrics(): PlatformRegistry {
  const registry = new PlatformRegistry();
  // The event-loop delay histogram samples every 100 ms, not prom-client's 10: its timer was
  // nearly every wake-up of an idle platform (about 200 a second), and a busy gateway pays for
  // it on the thread that also runs its control path.
  collectDefaultMetrics({ register: registry, prefix: 'pgwarden_process_', eventLoopMonitoringPrecision: 100 });
  return registry;
}

export function catalogGauges(registry: Registry, read: () => { connected: boolean; ageSeconds: number }): void {
  new Gauge({
    name: 'pgwarden_catalog_connected',
    help: '1 when the change feed is connected to the catalog; 0 while serving on the last snapshot (fail-static).',
    registers: [registry],
    collect() {
      this.set(read().connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'pgwarden_snapshot_age_seconds',
    help: 'Seconds since the in-memory catalog snapshot was last loaded.',
    registers: [registry],
    collect() {
      this.set(read().ageSeconds);
    },
  });
}

/** One server's pools added up: what /metrics shows per server. */
export interface PoolTotals {
  clients: number;
  waiting: number;
  active: number;
  idle: number;
  opening: number;
  waits: number;
  waitMs: number;
  opened: number;
}

export function sumPools(pools: readonly PoolStats[]): PoolTotals {
  const t: PoolTotals = { clients: 0, waiting: 0, active: 0, idle: 0, opening: 0, waits: 0, waitMs: 0, opened: 0 };
  for (const p of pools) {
    t.clients += p.clients;
    t.waiting += p.waiting;
    t.active += p.active;
    t.idle += p.idle;
    t.opening += p.opening;
    t.waits += p.waits;
    t.waitMs += p.waitMs;
    t.opened += p.opened;
  }
  return t;
}

/** The gateway's connection pools, per server (summed over its pools), read on each scrape.
 * The counters are set from the pools' own totals: they restart from zero when a pool is
 * closed and made again, as a counter may after a restart. */
export function poolMetrics(registry: Registry, servers: () => Iterable<string>, source: PoolStatsSource): void {
  const totals = () => [...servers()].map((server) => [server, sumPools(source.poolStats(server))] as const);
  const gauge = (name: string, help: string, pick: (t: PoolTotals) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [server, t] of totals()) this.set({ server }, pick(t));
      },
    });
  const counter = (name: string, help: string, pick: (t: PoolTotals) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['server'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [server, t] of totals()) this.inc({ server }, pick(t));
      },
    });
  gauge('pgwarden_pool_clients', 'Client sessions of the pools of a server now.', (t) => t.clients);
  gauge('pgwarden_pool_clients_waiting', 'Clients waiting for a pooled server connection now.', (t) => t.waiting);
  new Gauge({
    name: 'pgwarden_pool_server_connections',
    help: 'Pooled server connections now: lent to a client (active), ready (idle), being opened or reset (opening).',
    labelNames: ['server', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [server, t] of totals()) {
        this.set({ server, state: 'active' }, t.active);
        this.set({ server, state: 'idle' }, t.idle);
        this.set({ server, state: 'opening' }, t.opening);
      }
    },
  });
  counter('pgwarden_pool_waits_total', 'Times a client had to wait for a pooled server connection.', (t) => t.waits);
  counter('pgwarden_pool_wait_seconds_total', 'Total time clients waited for a pooled server connection, seconds.', (t) => t.waitMs / 1000);
  counter('pgwarden_pool_server_connections_opened_total', 'Server connections the pools opened.', (t) => t.opened);
}
