// GET /servers/{name}/pool gives every PoolStats field of every pool (the response schema keeps
// them), and PATCH /servers/{name} hands the settings it changed, old and new, to the admin action.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { ServerRecord, ServerSettings, ServersRepo } from '../../../src/catalog/servers-repo.js';
import type { ManagedServers } from '../../../src/engine/managed-servers.js';
import type { PoolStats } from '../../../src/gateway/pool/types.js';
import { ServerService, settingChanges } from '../../../src/services/server-service.js';
import { serverRoutes } from '../../../src/control/routes/servers.js';

const record: ServerRecord = {
  id: 1,
  name: 'shop',
  administratorLogin: 'alice',
  sslEnforcement: 'Enabled',
  minimalTlsVersion: 'TLS1_2',
  publicNetworkAccess: 'Enabled',
  passwordAuth: 'Enabled',
  poolMode: 'transaction',
  poolSize: 5,
  state: 'Ready',
  hostId: 'h',
  createdAt: new Date(0),
  updatedAt: new Date(0),
};

function pool(user: string, n: number): PoolStats {
  return {
    server: 'shop',
    mode: 'transaction',
    user,
    database: 'shop',
    clients: 10 * n,
    waiting: n,
    active: 5,
    idle: 0,
    opening: 1,
    poolSize: 5,
    waits: 7 * n,
    waitMs: 12.5 * n,
    opened: 6,
    reused: 100 * n,
  };
}

/** A repository holding one row in memory. */
function memoryRepo(): ServersRepo {
  let row = record;
  return {
    get: async (name: string) => (name === row.name ? row : null),
    update: async (name: string, s: Partial<ServerSettings>) => {
      if (name !== row.name) return null;
      const defined = Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined && v !== null));
      row = { ...row, ...defined };
      return row;
    },
  } as unknown as ServersRepo;
}

async function app() {
  const pools = [pool('app', 1), pool('report', 2)];
  const service = new ServerService(memoryRepo(), {} as ManagedServers, 'h', { poolStats: (s) => (s === 'shop' ? pools : []) });
  const api = Fastify();
  const details: unknown[] = [];
  api.addHook('onResponse', async (req) => void details.push(req.actionDetails));
  serverRoutes(api, service, 'pgwarden.localhost', '17');
  await api.ready();
  return { api, pools, details };
}

it('GET /servers/{name}/pool: the settings and every field of every pool', async () => {
  const { api, pools } = await app();
  const r = await api.inject({ method: 'GET', url: '/servers/shop/pool' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), { server: 'shop', poolMode: 'transaction', poolSize: 5, pools });
});

it('PATCH /servers/{name}: the admin action gets the settings changed, old and new, and nothing else', async () => {
  const { api, details } = await app();
  const r = await api.inject({ method: 'PATCH', url: '/servers/shop', payload: { poolMode: 'session', poolSize: 5, passwordAuth: 'Disabled' } });
  assert.equal(r.statusCode, 200);
  assert.equal(r.json().poolMode, 'session');
  assert.equal(r.json().poolSize, 5);
  assert.deepEqual(details.at(-1), {
    changes: { passwordAuth: { old: 'Enabled', new: 'Disabled' }, poolMode: { old: 'transaction', new: 'session' } },
  });
});

it('settingChanges: nothing changed is an empty record', () => {
  assert.deepEqual(settingChanges(record, { ...record, updatedAt: new Date() }), {});
  assert.deepEqual(settingChanges(record, { ...record, poolSize: 6 }), { poolSize: { old: 5, new: 6 } });
});

it('ServerService.update refuses a pool size out of range or a mode it does not know, as the API does', async () => {
  const service = new ServerService(memoryRepo(), {} as ManagedServers, 'h');
  await assert.rejects(service.update('shop', { poolSize: 0 }), {
    code: 'InvalidArgument',
    message: 'Invalid poolSize 0: it must be an integer from 1 to 10000.',
  });
  await assert.rejects(service.update('shop', { poolSize: 1.5 }), { message: 'Invalid poolSize 1.5: it must be an integer from 1 to 10000.' });
  await assert.rejects(service.update('shop', { poolMode: 'statement' as 'none' }), {
    message: "Invalid poolMode 'statement': it must be one of none, session, transaction.",
  });
  assert.deepEqual(await service.pool('shop'), { server: 'shop', poolMode: 'transaction', poolSize: 5, pools: [] });
});
