// The gateway tier's cores: throttle blocks and unblocks passed between two gateways' throttles
// (as the catalog channel would carry them), and the sealed cancel secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Throttle } from '../../../src/threat/protection/throttle.js';
import { DEFAULT_AUTO_PROTECTION } from '../../../src/threat/policy.js';
import { BlockSync, type BlockMessage } from '../../../src/app/tier/block-sync.js';
import { CANCEL_WINDOW_MS, CancelOpener, sealCancel } from '../../../src/app/tier/cancel-box.js';

const s = { ...DEFAULT_AUTO_PROTECTION, userAddressFailures: 3, addressFailures: 100, baseBlockSeconds: 10, maxBlockSeconds: 40, windowSeconds: 600 };

/** Two gateways; `pass` delivers what each says to the other, as the channel would (JSON). */
function pair() {
  const a = { throttle: new Throttle() } as { throttle: Throttle; sync: BlockSync };
  const b = { throttle: new Throttle() } as { throttle: Throttle; sync: BlockSync };
  a.sync = new BlockSync(a.throttle);
  b.sync = new BlockSync(b.throttle);
  const pass = (nowMs: number) => {
    const fromA = a.sync.changes(nowMs);
    const fromB = b.sync.changes(nowMs);
    for (const m of fromA) b.sync.receive(JSON.parse(JSON.stringify(m)) as BlockMessage, nowMs);
    for (const m of fromB) a.sync.receive(JSON.parse(JSON.stringify(m)) as BlockMessage, nowMs);
    return [...fromA, ...fromB];
  };
  return { a, b, pass };
}

test('a block started on one gateway is in force on the other, and is not sent back', () => {
  const { a, b, pass } = pair();
  let t = 1_000_000;
  for (let i = 0; i < 3; i++) a.throttle.failure('db', '10.0.0.1', 'alice', s, t++);
  assert.ok(a.throttle.check('db', '10.0.0.1', 'alice', t));
  assert.equal(b.throttle.check('db', '10.0.0.1', 'alice', t), null);
  const sent = pass(t);
  assert.deepEqual(
    sent.map((m) => m.op),
    ['block'],
  );
  const there = b.throttle.check('db', '10.0.0.1', 'alice', t);
  assert.deepEqual(there, a.throttle.check('db', '10.0.0.1', 'alice', t), 'the same block, same id and end');
  assert.deepEqual(pass(t + 1), [], 'nothing echoes');
  // A success on the other gateway does not lift the block in force there.
  b.throttle.success('db', '10.0.0.1', 'alice', t + 2);
  assert.ok(b.throttle.check('db', '10.0.0.1', 'alice', t + 2));
  // It lists it (the API there can unblock it).
  assert.equal(b.throttle.list('db', t + 2).length, 1);
});

test('an unblock on either gateway lifts the block on both; an expiry sends nothing', () => {
  const { a, b, pass } = pair();
  let t = 2_000_000;
  for (let i = 0; i < 3; i++) a.throttle.failure('db', '10.0.0.2', 'bob', s, t++);
  pass(t);
  const id = b.throttle.list('db', t)[0]!.id;
  // Unblocked where it was adopted: the gateway that started it lifts it too.
  assert.ok(b.throttle.unblock('db', id));
  assert.deepEqual(pass(t + 1), [{ op: 'unblock', server: 'db', id }]);
  assert.equal(a.throttle.check('db', '10.0.0.2', 'bob', t + 1), null);
  assert.deepEqual(pass(t + 2), []);

  for (let i = 0; i < 3; i++) a.throttle.failure('db', '10.0.0.3', 'carol', s, t++);
  pass(t);
  assert.deepEqual(pass(t + 60_000), [], 'blocks that ran out are not unblocks');
});

test('a longer block replaces a shorter copy; an older, shorter one does not shorten it', () => {
  const th = new Throttle();
  const sync = new BlockSync(th);
  let t = 3_000_000;
  const other = new Throttle();
  for (let i = 0; i < 3; i++) other.failure('db', '10.0.0.4', 'dan', s, t++);
  const first = other.list('db', t)[0]!;
  sync.receive({ op: 'block', block: first }, t);
  const longer = { ...first, until: first.until + 20_000 };
  sync.receive({ op: 'block', block: longer }, t);
  assert.equal(th.list('db', t)[0]!.until, longer.until);
  sync.receive({ op: 'block', block: first }, t);
  assert.equal(th.list('db', t)[0]!.until, longer.until);
});

test('a block whose id does not match its key, or malformed, is not adopted', () => {
  const th = new Throttle();
  const sync = new BlockSync(th);
  const t = 4_000_000;
  const forged = { id: 'feedfacefeedface', server: 'db', scope: 'address', address: '10.0.0.5', user: null, failures: 1, since: t, until: t + 10_000 };
  sync.receive({ op: 'block', block: forged } as BlockMessage, t);
  sync.receive({ op: 'block', block: { server: 'db' } } as unknown as BlockMessage, t);
  assert.equal(th.list(null, t).length, 0);
});

test('a gateway that (re)joins gets every block in force', () => {
  const { a } = pair();
  let t = 5_000_000;
  for (let i = 0; i < 3; i++) a.throttle.failure('db', '10.0.0.6', 'eve', s, t++);
  for (let i = 0; i < 3; i++) a.throttle.failure('db', '10.0.0.7', 'eve', s, t++);
  const late = new Throttle();
  const sync = new BlockSync(late);
  for (const m of a.sync.all(t)) sync.receive(m, t);
  assert.ok(late.check('db', '10.0.0.6', 'eve', t) && late.check('db', '10.0.0.7', 'eve', t));
});

test('a sealed cancel opens once, under the tier key only, for its own pid, within the window', () => {
  const key = randomBytes(32);
  const secret = randomBytes(4);
  const t = 6_000_000;
  const sealed = sealCancel(key, 4242, secret, t);
  assert.ok(!sealed.box.includes(secret.toString('base64url')), 'not in clear');
  assert.equal(new CancelOpener(randomBytes(32)).open(sealed, t), null, 'another platform');
  assert.equal(new CancelOpener(key).open({ ...sealed, pid: 4243 }, t), null, 'moved to another pid');
  assert.equal(new CancelOpener(key).open({ ...sealed, t: t + 1 }, t), null, 'time altered');
  assert.equal(new CancelOpener(key).open(sealed, t + CANCEL_WINDOW_MS + 1), null, 'stale');
  const opener = new CancelOpener(key);
  assert.deepEqual(opener.open(sealed, t + 10), secret);
  assert.equal(opener.open(sealed, t + 20), null, 'a replay');
});
