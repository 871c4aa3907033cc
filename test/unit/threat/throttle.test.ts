// Progressive throttling: pairs and addresses, never a user alone; blocks double and expire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Throttle } from '../../../src/threat/protection/throttle.js';
import { DEFAULT_AUTO_PROTECTION } from '../../../src/threat/policy.js';

const s = { ...DEFAULT_AUTO_PROTECTION, userAddressFailures: 3, addressFailures: 6, baseBlockSeconds: 10, maxBlockSeconds: 40, windowSeconds: 600 };

test('a (user, address) pair is blocked after its failures; the same user from another address is not', () => {
  const th = new Throttle();
  let t = 1_000_000;
  assert.deepEqual(th.failure('db', '10.0.0.1', 'alice', s, t++), []);
  assert.deepEqual(th.failure('db', '10.0.0.1', 'alice', s, t++), []);
  const [b] = th.failure('db', '10.0.0.1', 'alice', s, t++);
  assert.equal(b?.scope, 'user-address');
  assert.equal(b?.until, t - 1 + 10_000);
  assert.ok(th.check('db', '10.0.0.1', 'alice', t));
  assert.equal(th.check('db', '10.0.0.2', 'alice', t), null, 'no lock-out by name');
  assert.equal(th.check('db', '10.0.0.1', 'bob', t), null);
  assert.equal(th.check('other', '10.0.0.1', 'alice', t), null, 'per server');
  assert.equal(th.check('db', '10.0.0.1', 'alice', t + 10_000), null, 'expires');
});

test('blocks double up to the cap; a success clears the pair but not the address', () => {
  const th = new Throttle();
  let t = 0;
  const durations: number[] = [];
  for (let round = 0; round < 4; round++) {
    let block;
    for (let i = 0; i < 3; i++) block = th.failure('db', '10.0.0.9', `u${round}`, s, (t += 1)).find((b) => b.scope === 'user-address') ?? block;
    if (block) durations.push(block.until - block.since);
    t += 50_000;
  }
  assert.deepEqual(durations, [10_000, 10_000, 10_000, 10_000], 'different users: separate pairs');
  const pairs: number[] = [];
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 3; i++) {
      const b = th.failure('db', '10.0.0.7', 'carol', s, (t += 1)).find((x) => x.scope === 'user-address');
      if (b) pairs.push(b.until - b.since);
    }
    t += 50_000;
  }
  assert.deepEqual(pairs, [10_000, 20_000, 40_000, 40_000]);
  // The address: 6 failures across users blocks it for everybody from there.
  const th2 = new Throttle();
  let blocked = null;
  for (let i = 0; i < 6; i++) blocked = th2.failure('db', '10.0.0.5', `user${i}`, s, 100 + i).find((b) => b.scope === 'address') ?? blocked;
  assert.ok(blocked);
  assert.ok(th2.check('db', '10.0.0.5', 'someone-else', 200));
  // A success from the address does not reset the address count.
  const th3 = new Throttle();
  for (let i = 0; i < 5; i++) th3.failure('db', '10.0.0.4', `v${i}`, s, i);
  th3.success('db', '10.0.0.4', 'v0');
  assert.ok(th3.failure('db', '10.0.0.4', 'v9', s, 10).some((b) => b.scope === 'address'));
});

test('list and unblock by id', () => {
  const th = new Throttle();
  for (let i = 0; i < 3; i++) th.failure('db', '2001:db8::1', 'dave', s, i);
  const [b] = th.list('db', 10);
  assert.equal(b?.address, '2001:db8::/64', 'IPv6 clients are blocked by /64');
  assert.equal(th.list('other', 10).length, 0);
  assert.equal(th.unblock('other', b!.id), null);
  assert.ok(th.unblock('db', b!.id));
  assert.equal(th.check('db', '2001:db8::1', 'dave', 11), null);
});

test('a success does not lift a block in force (a gateway process may see the login before the block); after it, the pair is cleared', () => {
  const th = new Throttle();
  let t = 5_000_000;
  for (let i = 0; i < 3; i++) th.failure('db', '10.0.0.3', 'dora', s, t++);
  assert.ok(th.check('db', '10.0.0.3', 'dora', t));
  th.success('db', '10.0.0.3', 'dora', t);
  assert.ok(th.check('db', '10.0.0.3', 'dora', t), 'still blocked');
  t += 10_000;
  assert.equal(th.check('db', '10.0.0.3', 'dora', t), null, 'expired');
  th.success('db', '10.0.0.3', 'dora', t);
  assert.deepEqual(th.failure('db', '10.0.0.3', 'dora', s, t++), [], 'the count started again');
});

test('list and unblock see exactly the blocks in force among many keys; expired, forgotten and unblocked ones drop out', () => {
  const th = new Throttle();
  let t = 9_000_000;
  for (let i = 0; i < 10_000; i++) th.failure('db', `10.1.${i >> 8}.${i & 255}`, 'nobody', s, t); // one failure each: no block
  for (let i = 0; i < 3; i++) th.failure('db', '10.9.9.9', 'eve', s, t++);
  for (let i = 0; i < 3; i++) th.failure('other', '10.9.9.8', 'eve', s, t++);
  assert.deepEqual(
    th.list(null, t).map((b) => [b.server, b.address]),
    [
      ['db', '10.9.9.9'],
      ['other', '10.9.9.8'],
    ],
  );
  assert.equal(th.list('db', t).length, 1);
  const [other] = th.list('other', t);
  assert.equal(th.unblock('other', other!.id)?.address, '10.9.9.8');
  assert.equal(th.unblock('other', other!.id), null, 'once');
  assert.equal(th.list(null, t).length, 1);
  th.forgetServer('db');
  assert.equal(th.list(null, t).length, 0);
  for (let i = 0; i < 3; i++) th.failure('db', '10.9.9.7', 'eve', s, t++);
  assert.equal(th.list(null, t).length, 1);
  assert.equal(th.list(null, t + 10_000).length, 0, 'expired');
});
