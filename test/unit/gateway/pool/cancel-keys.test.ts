// Cancel keys whose target is found at cancel time (transaction mode), next to fixed ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelKeys, VIRTUAL_PID_BASE, type CancelTarget } from '../../../../src/gateway/cancel-keys.js';

const target = (pid: number): CancelTarget => ({ socketDir: '/s', processId: pid, secretKey: Buffer.from([1, 2, 3, 4]) });

test('a resolver key gets a gateway pid above any real one and names the backend held at cancel time', () => {
  const keys = new CancelKeys();
  let now: CancelTarget | null = null;
  const k = keys.issue(() => now, 32);
  assert.ok(k.processId >= VIRTUAL_PID_BASE && k.processId < 2 ** 31);
  assert.equal(keys.lookup(k.processId, k.secretKey), null); // between transactions: nothing to cancel
  now = target(4242);
  assert.equal(keys.lookup(k.processId, k.secretKey)?.processId, 4242);
  assert.equal(keys.lookup(k.processId, Buffer.alloc(32)), null);
  k.release();
  assert.equal(keys.lookup(k.processId, k.secretKey), null);
  assert.equal(keys.size, 0);
});

test('two resolver keys get different pids; a fixed key keeps the real pid', () => {
  const keys = new CancelKeys();
  const a = keys.issue(() => null);
  const b = keys.issue(() => null);
  const c = keys.issue(target(77));
  assert.notEqual(a.processId, b.processId);
  assert.equal(c.processId, 77);
  assert.equal(keys.lookup(77, c.secretKey)?.processId, 77);
});
