// W8: IPv6 clients are throttled by /64, IPv4 per address, IPv4-mapped IPv6 as IPv4.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Throttle } from '../../../src/threat/protection/throttle.js';
import { throttleClient } from '../../../src/threat/protection/client-key.js';
import { DEFAULT_AUTO_PROTECTION } from '../../../src/threat/policy.js';

const s = { ...DEFAULT_AUTO_PROTECTION, userAddressFailures: 3, addressFailures: 6, baseBlockSeconds: 10, maxBlockSeconds: 40, windowSeconds: 600 };

test('the client a failure counts against', () => {
  assert.equal(throttleClient('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  assert.equal(throttleClient('2001:DB8:1:2::1'), '2001:db8:1:2::/64');
  assert.equal(throttleClient('2001:db8:1:3::1'), '2001:db8:1:3::/64');
  assert.equal(throttleClient('::1'), '::/64');
  assert.equal(throttleClient('fe80::1'), 'fe80::/64');
  assert.equal(throttleClient('10.0.0.1'), '10.0.0.1');
  assert.equal(throttleClient('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(throttleClient('::ffff:a00:1'), '10.0.0.1');
  assert.equal(throttleClient('/run/socket'), '/run/socket');
});

test('rotating through one /64 is one client: the pair and the address block the whole /64', () => {
  const th = new Throttle();
  let t = 1_000;
  for (let i = 1; i <= 2; i++) assert.deepEqual(th.failure('db', `2001:db8::${i}`, 'alice', s, t++), []);
  const [pair] = th.failure('db', '2001:db8::ffff:3', 'alice', s, t++);
  assert.equal(pair?.scope, 'user-address');
  assert.equal(pair?.address, '2001:db8::/64');
  assert.ok(th.check('db', '2001:db8::9999:1', 'alice', t), 'another address of the /64');
  assert.equal(th.check('db', '2001:db8:0:1::1', 'alice', t), null, 'the next /64 is another client');
  for (let i = 0; i < 3; i++) th.failure('db', `2001:db8::a:${i}`, `u${i}`, s, t++);
  assert.ok(th.check('db', '2001:db8::77', 'nobody-yet', t), 'the address key counts the /64 too');
});

test('IPv4 stays per address; IPv4-mapped IPv6 is the IPv4 address; a success clears the /64 pair', () => {
  const th = new Throttle();
  let t = 0;
  for (let i = 0; i < 3; i++) th.failure('db', '192.0.2.1', 'alice', s, t++);
  assert.ok(th.check('db', '::ffff:192.0.2.1', 'alice', t));
  assert.equal(th.check('db', '192.0.2.2', 'alice', t), null, 'the neighbour is not blocked');
  for (let i = 0; i < 2; i++) th.failure('db', `2001:db8::${i}`, 'bob', s, t++);
  th.success('db', '2001:db8::99', 'bob');
  assert.deepEqual(th.failure('db', '2001:db8::5', 'bob', s, t++), [], 'the count started over');
});
