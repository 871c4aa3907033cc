// The blocks another gateway process checks step 7 against: the same keys as the throttle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Throttle } from '../../../src/threat/protection/throttle.js';
import { BlockMirror } from '../../../src/threat/protection/block-mirror.js';
import { DEFAULT_AUTO_PROTECTION } from '../../../src/threat/policy.js';

const s = { ...DEFAULT_AUTO_PROTECTION, userAddressFailures: 2, addressFailures: 4, baseBlockSeconds: 10, maxBlockSeconds: 40, windowSeconds: 600 };

test('the mirror answers as the throttle it copies: pair, address, IPv6 /64, expiry, server', () => {
  const th = new Throttle();
  const t = 1_000_000;
  th.failure('db', '10.0.0.1', 'alice', s, t);
  th.failure('db', '10.0.0.1', 'alice', s, t + 1);
  for (let i = 0; i < 4; i++) th.failure('db', '2001:db8:1:2::5', `u${i}`, s, t + 2 + i);
  const m = new BlockMirror();
  m.replace(th.list(null, t + 10));
  const cases: [string, string, string][] = [
    ['db', '10.0.0.1', 'alice'],
    ['db', '10.0.0.1', 'bob'],
    ['db', '10.0.0.2', 'alice'],
    ['other', '10.0.0.1', 'alice'],
    ['db', '2001:db8:1:2::99', 'zed'],
    ['db', '2001:db8:1:3::5', 'u0'],
  ];
  for (const at of [t + 10, t + 10_001, t + 20_000]) {
    for (const [server, address, user] of cases) {
      assert.deepEqual(m.check(server, address, user, at), th.check(server, address, user, at), `${server} ${address} ${user} at ${at}`);
    }
  }
  assert.ok(m.check('db', '10.0.0.1', 'alice', t + 10));
  assert.ok(m.check('db', '2001:db8:1:2::99', 'zed', t + 10), 'the /64 is one client');
  m.replace([]);
  assert.equal(m.check('db', '10.0.0.1', 'alice', t + 10), null, 'unblocked');
});
