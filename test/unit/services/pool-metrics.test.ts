// /metrics: the gateway's pools summed per server, read from the pools on every scrape.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { PoolStats } from '../../../src/gateway/pool/types.js';
import { poolMetrics } from '../../../src/services/metrics.js';

function pool(server: string, n: number): PoolStats {
  return {
    server,
    mode: 'session',
    user: `u${n}`,
    database: 'db',
    clients: n,
    waiting: n,
    active: 2 * n,
    idle: 3 * n,
    opening: 1,
    poolSize: 20,
    waits: 10 * n,
    waitMs: 1500 * n,
    opened: 4 * n,
    reused: 0,
  };
}

it('each metric is the sum over the pools of a server; a server without pools shows zeros', async () => {
  const pools = new Map<string, PoolStats[]>([['a', [pool('a', 1), pool('a', 2)]]]);
  const registry = new Registry();
  poolMetrics(registry, () => ['a', 'b'], { poolStats: (s) => pools.get(s) ?? [] });
  const text = await registry.metrics();
  const lines = [
    'pgwarden_pool_clients{server="a"} 3',
    'pgwarden_pool_clients{server="b"} 0',
    'pgwarden_pool_clients_waiting{server="a"} 3',
    'pgwarden_pool_server_connections{server="a",state="active"} 6',
    'pgwarden_pool_server_connections{server="a",state="idle"} 9',
    'pgwarden_pool_server_connections{server="a",state="opening"} 2',
    'pgwarden_pool_server_connections{server="b",state="idle"} 0',
    'pgwarden_pool_waits_total{server="a"} 30',
    'pgwarden_pool_wait_seconds_total{server="a"} 4.5',
    'pgwarden_pool_server_connections_opened_total{server="a"} 12',
    '# TYPE pgwarden_pool_waits_total counter',
    '# TYPE pgwarden_pool_clients gauge',
  ];
  for (const l of lines) assert.ok(text.split('\n').includes(l), `${l}\n--- in ---\n${text}`);

  // A pool closed since the last scrape no longer counts, and a deleted server is gone.
  pools.set('a', [pool('a', 1)]);
  const next = (await registry.metrics()).split('\n');
  assert.ok(next.includes('pgwarden_pool_clients{server="a"} 1'));
  assert.ok(next.includes('pgwarden_pool_waits_total{server="a"} 10'));
});

it('a server deleted since the last scrape has no series any more', async () => {
  let servers = ['a', 'b'];
  const registry = new Registry();
  poolMetrics(registry, () => servers, { poolStats: () => [] });
  assert.match(await registry.metrics(), /server="b"/);
  servers = ['a'];
  assert.doesNotMatch(await registry.metrics(), /server="b"/);
});
