// The pieces of `up --gateway-workers N` that decide without sockets: how bounds are split, how
// pool rows are summed, how events are batched and strict durability waits for the ack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergePoolStats, shareLimits, shareOf } from '../../../src/app/workers/share.js';
import { EventForwarder, ForwardingSessionIndex } from '../../../src/app/workers/event-forwarder.js';
import type { FromWorker } from '../../../src/app/workers/messages.js';
import { IndexInbox } from '../../../src/app/workers/index-ops.js';
import { SessionIndex } from '../../../src/gateway/session-index.js';
import { defaultLimits } from '../../../src/gateway/context.js';
import type { PoolStats } from '../../../src/gateway/pool/types.js';
import type { AnyEvent } from '../../../src/events/types.js';

test('a bound is split so the parts add up to it, at least one each', () => {
  for (const [total, count] of [
    [20, 2],
    [20, 3],
    [7, 4],
    [1, 1],
    [200, 8],
  ] as const) {
    const parts = Array.from({ length: count }, (_, i) => shareOf(total, i, count));
    assert.equal(
      parts.reduce((a, b) => a + b, 0),
      total,
      `${total} over ${count}: ${parts.join('+')}`,
    );
    assert.ok(Math.max(...parts) - Math.min(...parts) <= 1);
  }
  assert.deepEqual(
    [0, 1, 2].map((i) => shareOf(2, i, 3)),
    [1, 1, 1],
    'never zero',
  );
  const l = shareLimits(defaultLimits, 1, 2);
  assert.equal(l.maxConnectionsPerServer, defaultLimits.maxConnectionsPerServer / 2);
  assert.equal(l.handshakeTimeoutMs, defaultLimits.handshakeTimeoutMs);
});

test('pool rows of the processes are summed per (role, database)', () => {
  const row = (user: string, n: number): PoolStats => ({
    server: 's',
    mode: 'transaction',
    user,
    database: 'postgres',
    clients: n,
    waiting: 1,
    active: n,
    idle: 1,
    opening: 0,
    poolSize: 20,
    waits: 2,
    waitMs: 10,
    opened: n,
    reused: 3,
  });
  const merged = mergePoolStats([row('a', 2), row('b', 5), row('a', 3)]);
  assert.equal(merged.length, 2);
  const a = merged.find((r) => r.user === 'a')!;
  assert.deepEqual([a.clients, a.waiting, a.active, a.idle, a.waits, a.waitMs, a.opened, a.reused, a.poolSize], [5, 2, 5, 2, 4, 20, 5, 6, 20]);
});

const event = (n: number) => ({ type: 'platform.started', time: `t${n}` }) as AnyEvent;

test('events leave in one batch per turn; strict durability waits for the batch ack', async () => {
  const sent: FromWorker[] = [];
  const f = new EventForwarder((m) => sent.push(m), true);
  assert.equal(f.pendingDurable(), null, 'nothing published');
  f.event(event(1));
  f.event(event(2));
  const first = f.pendingDurable();
  assert.ok(first);
  assert.equal(f.pendingDurable(), first, 'one promise per batch');
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 1);
  const batch = sent[0] as Extract<FromWorker, { type: 'events' }>;
  assert.deepEqual(
    batch.events.map((e) => e.time),
    ['t1', 't2'],
  );
  assert.equal(batch.strict, true);
  let done = false;
  void first.then(() => (done = true));
  f.event(event(3));
  const second = f.pendingDurable()!;
  f.ack(batch.seq);
  await new Promise((r) => setImmediate(r));
  assert.equal(done, true);
  let secondDone = false;
  void second.then(() => (secondDone = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(secondDone, false, 'the next batch is not on disk yet');
  f.ack(batch.seq + 1);
  await second;
});

test('strict durability waits for events, not for index changes (they are no audit records)', () => {
  const f = new EventForwarder(() => undefined, true);
  new ForwardingSessionIndex(f).lent({ server: 's', backendPid: 0, connId: 'c', applicationName: undefined }, 5, 1);
  assert.equal(f.pendingDurable(), null);
  f.event(event(1));
  assert.ok(f.pendingDurable());
  f.flush();
});

test('batched durability never waits; the audit state follows the platform process', () => {
  const f = new EventForwarder(() => undefined, false);
  f.event(event(1));
  assert.equal(f.pendingDurable(), null);
  assert.equal(f.acceptsConnections, true);
  f.setAccepts(false);
  assert.equal(f.acceptsConnections, false);
  f.flush();
});

test('the session index of another process forwards its changes and keeps nothing', () => {
  const seen: [string, string, number, number][] = [];
  const index = new ForwardingSessionIndex({
    lent: (s, pid, at) => seen.push(['lent', s.connId, pid, at]),
    returned: (s, pid, at) => seen.push(['returned', s.connId, pid, at]),
  });
  const s = { server: 's', backendPid: 7, connId: 'c1', applicationName: 'app' };
  index.opened(s);
  index.lent(s, 9, 100);
  index.returned(s, 9, 200);
  index.closed(s);
  assert.deepEqual(
    seen.map(([op, , pid]) => [op, pid]),
    [
      ['lent', 7],
      ['lent', 9],
      ['returned', 9],
      ['returned', 7],
    ],
  );
  assert.equal(index.find('s', 7), null);
});

test("index changes cross to the platform's index compact: each session described once, then four numbers a change", async () => {
  const sent: Extract<FromWorker, { type: 'events' }>[] = [];
  const f = new EventForwarder((m) => sent.push(m as Extract<FromWorker, { type: 'events' }>), false);
  const remote = new ForwardingSessionIndex(f);
  const a = { server: 's', backendPid: 0, connId: 'a', applicationName: 'app' };
  const b = { server: 's', backendPid: 0, connId: 'b', applicationName: undefined };
  // Transaction pooling: a and b take turns on backends 41 and 42.
  for (let i = 0; i < 10; i++) {
    remote.lent(a, 41, 1000 + 10 * i);
    remote.lent(b, 42, 1000 + 10 * i);
    remote.returned(a, 41, 1005 + 10 * i);
    remote.returned(b, 42, 1005 + 10 * i);
  }
  // Changes alone wait for the window (20 ms), not for the end of the turn.
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 0);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(sent.length, 1);
  const first = sent[0]!.index!;
  assert.deepEqual(
    first.sessions.map((s) => [s.connId, s.applicationName]),
    [
      ['a', 'app'],
      ['b', undefined],
    ],
  );
  assert.ok(first.ops instanceof Float64Array);
  assert.equal(first.ops.length, 40 * 4);

  // The platform's side: which session held the backend when.
  const index = new SessionIndex();
  const inbox = new IndexInbox();
  inbox.apply(structuredClone(first), index);
  assert.equal(index.findAt('s', 41, 1032)?.connId, 'a');
  assert.equal(index.findAt('s', 42, 1092)?.applicationName, undefined);
  assert.equal(index.findAt('s', 42, 1092)?.connId, 'b');
  assert.equal(index.findAt('s', 43, 1007), null, 'a backend nobody was lent');

  // An event takes the changes before it along at the end of its turn. Later changes name the
  // sessions by ref only; a session's end forgets its ref on both sides, and a later change of
  // the same connId describes it again.
  remote.lent(a, 41, 2000);
  f.event({ type: 'session.ended', time: 't', connection: { connId: 'a', clientAddress: '127.0.0.1', clientPort: 1, listener: 'public' } } as AnyEvent);
  remote.lent(a, 43, 3000);
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 2);
  const second = sent[1]!;
  assert.deepEqual(
    second.index!.sessions.map((s) => s.connId),
    ['a'],
  );
  assert.equal(second.index!.sessions[0]!.ref === first.sessions[0]!.ref, false, 'a new ref after the end');
  inbox.apply(second.index!, index);
  for (const e of second.events) if (e.type === 'session.ended') inbox.ended(e.connection.connId);
  assert.equal(index.findAt('s', 41, 2001)?.connId, 'a');
  assert.equal(index.findAt('s', 43, 3001)?.connId, 'a');
  // A change naming a ref the platform forgot (its session ended) is dropped, not misattributed.
  inbox.ended('b');
  inbox.apply({ sessions: [], ops: Float64Array.from([0, first.sessions[1]!.ref, 45, 4000]) }, index);
  assert.equal(index.findAt('s', 45, 4001), null);
  // A process started again: its refs start over.
  inbox.clear();
  inbox.apply({ sessions: [], ops: Float64Array.from([0, second.index!.sessions[0]!.ref, 44, 5000]) }, index);
  assert.equal(index.findAt('s', 44, 5001), null);
});

test('a request over IPC resolves with its answer, or with null after its bound; a late answer is ignored', async () => {
  const { PendingRequests } = await import('../../../src/app/workers/requests.js');
  const r = new PendingRequests<string>();
  const a = r.open(1_000);
  const b = r.open(10);
  assert.notEqual(a.req, b.req);
  r.answer(a.req, 'found');
  assert.equal(await a.answer, 'found');
  assert.equal(await b.answer, null);
  r.answer(b.req, 'too late');
  r.answer(12345, 'unknown');
});
