// Which endpoint an attached server's relay takes for the primary, with the nodes' answers faked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrimaryRelay } from '../../../src/engine/attached/primary-relay.js';
import type { Endpoint } from '../../../src/engine/attached/endpoints.js';

const A = { host: '10.0.0.1', port: 5432 };
const B = { host: '10.0.0.2', port: 5432 };

function relay(writable: () => Set<string>) {
  const r = new PrimaryRelay({ id: 1, name: 'ha1', endpoints: [A, B], ca: 'pem', user: 'postgres', password: 'x' }, '/nonexistent', async (e) => {
    if (e.port === 1) throw new Error('unreachable');
    return { writable: writable().has(e.host), superuser: true };
  });
  const moves: [string | null, string][] = [];
  r.on('primary', (from: Endpoint | null, to: Endpoint) => moves.push([from?.host ?? null, to.host]));
  return { r, moves };
}

test('the writable endpoint is the primary; a move is reported once, old and new', async () => {
  let w = new Set([A.host]);
  const { r, moves } = relay(() => w);
  assert.deepEqual(await r.find(), A);
  assert.deepEqual(await r.find(), A);
  w = new Set([B.host]);
  assert.deepEqual(await r.find(), B);
  assert.deepEqual(moves, [
    [null, A.host],
    [A.host, B.host],
  ]);
});

test('two writable nodes (not yet fenced): the known primary is kept', async () => {
  let w = new Set([B.host]);
  const { r, moves } = relay(() => w);
  await r.find();
  w = new Set([A.host, B.host]);
  assert.deepEqual(await r.find(), B);
  assert.deepEqual(moves, [[null, B.host]]);
});

test('no writable node: the exact error, naming every endpoint', async () => {
  const { r } = relay(() => new Set());
  await assert.rejects(r.find(), {
    message: 'no endpoint of server "ha1" accepts writes (10.0.0.1:5432: read-only (standby); 10.0.0.2:5432: read-only (standby))',
  });
});
