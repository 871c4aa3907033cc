// The pool's decisions without sockets: idle first (LIFO), open up to the size, FIFO waiters,
// resets before reuse, a smaller size closing connections as they come back, timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoolCore, type Grant, type Waiter } from '../../../../src/gateway/pool/pool-core.js';

function waiter(since: number, log: string[], name: string): Waiter<string> & { got: Grant<string> | null } {
  const w = {
    since,
    got: null as Grant<string> | null,
    grant(g: Grant<string>) {
      w.got = g;
      log.push(`${name}:${g.kind === 'conn' ? g.conn : 'open'}`);
    },
  };
  return w;
}

test('opens up to the size, then clients wait', () => {
  const p = new PoolCore<string>();
  assert.deepEqual(p.request(2), { kind: 'open' });
  assert.deepEqual(p.request(2), { kind: 'open' });
  assert.equal(p.request(2), null);
  assert.equal(p.opening, 2);
  p.openSucceeded();
  p.openSucceeded();
  assert.equal(p.active, 2);
  assert.equal(p.opened, 2);
  assert.equal(p.total, 2);
});

test('a returned connection is reset, then goes to the first waiter (FIFO); a newcomer does not overtake', () => {
  const p = new PoolCore<string>();
  p.request(1);
  p.openSucceeded();
  const log: string[] = [];
  const a = waiter(10, log, 'a');
  const b = waiter(20, log, 'b');
  assert.equal(p.request(1), null);
  p.enqueue(a);
  assert.equal(p.request(1), null);
  p.enqueue(b);
  assert.equal(p.release(true, 1, 30), 'reset');
  assert.equal(p.opening, 1);
  assert.equal(p.active, 0);
  // A newcomer while the reset runs: waiters are first.
  assert.equal(p.request(1), null);
  assert.equal(p.returned('c1', 1, 50), 'given');
  assert.deepEqual(log, ['a:c1']);
  assert.equal(p.active, 1);
  assert.equal(p.reused, 1);
  assert.equal(p.waits, 2);
  assert.equal(p.waitMs, 40);
  assert.equal(p.waiting, 1);
});

test('idle connections are lent last-in first-out', () => {
  const p = new PoolCore<string>();
  for (let i = 0; i < 2; i++) {
    p.request(5);
    p.openSucceeded();
  }
  p.release(true, 5, 0);
  p.returned('old', 5, 0);
  p.release(true, 5, 1);
  p.returned('new', 5, 1);
  assert.equal(p.idle, 2);
  assert.deepEqual(p.request(5), { kind: 'conn', conn: 'new' });
  assert.equal(p.reused, 1);
});

test('a broken connection is closed and its place lets a waiter open a new one', () => {
  const p = new PoolCore<string>();
  p.request(1);
  p.openSucceeded();
  const log: string[] = [];
  p.enqueue(waiter(0, log, 'a'));
  assert.equal(p.release(false, 1, 5), 'close');
  assert.deepEqual(log, ['a:open']);
  assert.equal(p.opening, 1);
  assert.equal(p.active, 0);
});

test('a failed open gives its place to the next waiter', () => {
  const p = new PoolCore<string>();
  p.request(1);
  const log: string[] = [];
  p.enqueue(waiter(0, log, 'a'));
  p.openFailed(1, 3);
  assert.deepEqual(log, ['a:open']);
  assert.equal(p.opening, 1);
});

test('a smaller size closes connections as they come back', () => {
  const p = new PoolCore<string>();
  for (let i = 0; i < 3; i++) {
    p.request(3);
    p.openSucceeded();
  }
  // The size went down to 1: two of the three close on return, the last is kept.
  assert.equal(p.release(true, 1, 0), 'close');
  assert.equal(p.release(true, 1, 0), 'close');
  assert.equal(p.release(true, 1, 0), 'reset');
  assert.equal(p.returned('c', 1, 0), 'idle');
  assert.equal(p.total, 1);
});

test('idle connections expire after the idle timeout; the newest stay', () => {
  const p = new PoolCore<string>();
  for (let i = 0; i < 2; i++) {
    p.request(5);
    p.openSucceeded();
  }
  p.release(true, 5, 0);
  p.returned('a', 5, 0);
  p.release(true, 5, 100);
  p.returned('b', 5, 100);
  assert.deepEqual(p.expireIdle(150, 100), ['a']);
  assert.equal(p.idle, 1);
  assert.deepEqual(p.drainIdle(5, 200), ['b']);
  assert.equal(p.total, 0);
});

test('waiters past the wait timeout are taken out, oldest first; cancel removes one', () => {
  const p = new PoolCore<string>();
  p.request(1);
  p.openSucceeded();
  const log: string[] = [];
  const a = waiter(0, log, 'a');
  const b = waiter(50, log, 'b');
  const c = waiter(60, log, 'c');
  p.enqueue(a);
  p.enqueue(b);
  p.enqueue(c);
  assert.equal(p.cancel(c), true);
  assert.equal(p.cancel(c), false);
  assert.deepEqual(p.expireWaiters(100, 100), [a]);
  assert.equal(p.waiting, 1);
  assert.deepEqual(p.drainWaiters(), [b]);
  assert.deepEqual(log, []);
});

test('a connection removed while idle (server closed it) frees its place for a waiter', () => {
  const p = new PoolCore<string>();
  p.request(1);
  p.openSucceeded();
  p.release(true, 1, 0);
  p.returned('x', 1, 0);
  assert.equal(p.removeIdle('x', 1, 0), true);
  assert.equal(p.total, 0);
  assert.deepEqual(p.request(1), { kind: 'open' });
});

test('a lowered size closes idle connections over it at once, oldest first', () => {
  const p = new PoolCore<string>();
  for (let i = 0; i < 3; i++) p.request(3);
  for (let i = 0; i < 3; i++) p.openSucceeded();
  for (const c of ['c1', 'c2', 'c3']) {
    assert.equal(p.release(true, 3, 0), 'reset');
    assert.equal(p.returned(c, 3, 0), 'idle');
  }
  assert.deepEqual(p.trimIdle(1), ['c1', 'c2']);
  assert.deepEqual(p.request(1), { kind: 'conn', conn: 'c3' });
  assert.equal(p.request(1), null, 'one connection in all');
  assert.deepEqual(p.trimIdle(1), []);
});

test('requestIdle: an idle connection at once only when nobody waits (a newcomer does not overtake)', () => {
  const p = new PoolCore<string>();
  assert.equal(p.requestIdle(), null, 'nothing idle');
  p.request(1);
  p.openSucceeded();
  const log: string[] = [];
  p.enqueue(waiter(0, log, 'a'));
  p.release(true, 1, 1);
  // Back while a client waits: the waiter gets it; requestIdle has nothing.
  assert.equal(p.returned('c1', 1, 2), 'given');
  assert.equal(p.requestIdle(), null);
  p.release(true, 1, 3);
  assert.equal(p.returned('c1', 1, 4), 'idle');
  assert.equal(p.requestIdle(), 'c1');
  assert.equal(p.active, 1);
  assert.equal(p.idle, 0);
  assert.equal(p.reused, 2);
});
