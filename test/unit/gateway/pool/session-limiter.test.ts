// A pooled server's clients have a limit of their own: they do not each hold a backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionLimiter } from '../../../../src/gateway/session-limiter.js';

test('pooled and unpooled sessions are counted under separate limits', () => {
  const limiter = new SessionLimiter(1, 3);
  const direct = limiter.acquire(1);
  assert.ok(direct);
  assert.equal(limiter.acquire(1), null, 'one unpooled session per server');
  const pooled = [limiter.acquire(1, true), limiter.acquire(1, true), limiter.acquire(1, true)];
  assert.ok(pooled.every((r) => r !== null));
  assert.equal(limiter.acquire(1, true), null, 'three pooled clients per server');
  pooled[0]!();
  pooled[0]!(); // released once only
  assert.ok(limiter.acquire(1, true));
  assert.equal(limiter.acquire(1, true), null);
  assert.ok(limiter.acquire(2), 'another server has its own count');
  direct();
  assert.ok(limiter.acquire(1));
});
