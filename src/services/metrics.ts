// Prometheus metrics of the platform; the gateway adds its own to the same registry.
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';

export function createMetrics(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'pgwarden_process_' });
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
