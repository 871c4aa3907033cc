// Step 7: startup parameters, throttling, connections per server, in that order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startupParameters, throttle, connectionLimit } from '../../../../src/gateway/checks/step-7-protection.js';
import { admission, env } from './facts.js';

test('startup parameters: replication and reserved application names refused', () => {
  const repl = startupParameters(
    admission({
      forward: new Map([
        ['user', 'alice'],
        ['replication', 'database'],
      ]),
    }),
  );
  assert.ok(!repl.ok);
  assert.deepEqual(repl.error, { sqlstate: '28000', message: 'replication connections are not supported through the gateway' });
  assert.equal(repl.reason, 'replication-refused');
  const app = startupParameters(
    admission({
      forward: new Map([
        ['user', 'alice'],
        ['options', '-c application_name=pgwarden-backup'],
      ]),
    }),
  );
  assert.ok(!app.ok);
  assert.deepEqual(app.error, { sqlstate: '42939', message: `application_name "pgwarden-backup" is reserved for the platform's own sessions` });
  assert.equal(app.reason, 'reserved-application-name');
  assert.deepEqual(startupParameters(admission()), { ok: true });
});

test('throttle: a block for the address (or user and address) refuses with 53300', () => {
  const e = env();
  assert.deepEqual(throttle(admission(), e), { ok: true });
  e.blocked.add('demo/203.0.113.7/alice');
  const v = throttle(admission(), e);
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '53300', message: 'Too many failed login attempts from this address. Try again later.' });
  assert.equal(v.reason, 'throttled');
  assert.deepEqual(throttle(admission({ user: 'bob' }), e), { ok: true });
});

test("connection limit: a slot held by a guard, PostgreSQL's text when none is left, the slot back on release", () => {
  const e = env({ maxPerServer: 1 });
  const first = connectionLimit(admission(), e);
  assert.ok(first.ok && first.guard);
  const full = connectionLimit(admission(), e);
  assert.ok(!full.ok);
  assert.deepEqual(full.error, { sqlstate: '53300', message: 'sorry, too many clients already' });
  assert.equal(full.reason, 'too-many-connections');
  first.guard.release();
  first.guard.release(); // once only: a second release gives back nothing more
  const again = connectionLimit(admission(), e);
  assert.ok(again.ok && again.guard);
  assert.ok(!connectionLimit(admission(), e).ok, 'the double release did not free a second slot');
});
