// The transaction-mode relay's statements over in-memory streams (fakes in transaction-fakes.ts):
// named prepared statements under the gateway's names on any connection, pipelines, errors that
// skip to Sync, LISTEN refused, the per-connection statement cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LISTEN_MESSAGE } from '../../../../src/gateway/pool/transaction-relay.js';
import { parse, bind, describe, execute, close, sync, query, FakePool, Client } from './transaction-fakes.js';

test('pipelined extended queries with the same statement names, on two server connections', async () => {
  const pool = new FakePool(2);
  const a = new Client(pool);
  const b = new Client(pool);
  const pipeline = (v: string) => [parse('s1', `SELECT ${v}`), bind('', 's1'), describe('P', ''), execute(), sync(), bind('', 's1'), execute(), sync()];
  // Both hold a connection at once: each is in a transaction.
  a.send(query('BEGIN'));
  b.send(query('BEGIN'));
  await a.readies(1);
  await b.readies(1);
  a.send(...pipeline('1'));
  b.send(...pipeline('1'));
  await a.readies(3);
  await b.readies(3);
  assert.equal(a.trace, 'C Z(T) 1 2 T D C Z(T) 2 D C Z(T)');
  assert.equal(b.trace, 'C Z(T) 1 2 T D C Z(T) 2 D C Z(T)');
  assert.deepEqual(a.lent, [1]);
  assert.deepEqual(b.lent, [2]);
  // Both servers got the statement under the gateway's name, the same on both.
  const names = pool.backends.map((be) => be.log.find((l) => l.startsWith('P:'))?.split(':')[1]);
  assert.match(names[0]!, /^pgw_[0-9a-f]{32}$/);
  assert.equal(names[0], names[1]);
  assert.deepEqual(
    pool.backends[0]!.log.filter((l) => l.startsWith('B:')),
    [`B::${names[0]}`, `B::${names[0]}`],
  );
  // What the client sent is what the observer saw, under the client's own name.
  assert.deepEqual(
    a.frontend.filter((e) => e.type === 'parse').map((e) => (e as { name: string }).name),
    ['s1'],
  );
});

test('a statement prepared on a connection by one client is bound there by another without a new Parse', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('q', 'SELECT 7'), sync());
  await a.readies(1);
  assert.equal(a.trace, '1 Z(I)');
  assert.equal(a.session.current(), null); // given back at 'I'
  const b = new Client(pool);
  b.send(parse('mine', 'SELECT 7'), bind('', 'mine'), execute(), sync());
  await b.readies(1);
  assert.equal(b.trace, '1 2 D C Z(I)');
  const log = pool.backends[0]!.log;
  assert.equal(log.filter((l) => l.startsWith('P:')).length, 1, log.join(' '));
  assert.deepEqual(pool.returns, ['1:idle', '1:idle']);
});

test('a statement bound on a connection that lacks it: the Parse is inserted and its ParseComplete not sent', async () => {
  const pool = new FakePool(2);
  const holder = new Client(pool);
  const a = new Client(pool);
  holder.send(query('BEGIN')); // connection 1
  await holder.readies(1);
  a.send(parse('s', 'SELECT 5'), sync()); // prepared on connection 2, given back
  await a.readies(1);
  holder.send(query('COMMIT'));
  await holder.readies(2);
  const holder2 = new Client(pool);
  holder2.send(query('BEGIN')); // connection 2
  await holder2.readies(1);
  a.send(bind('', 's'), execute(), describe('S', 's'), sync());
  await a.readies(2);
  assert.equal(a.trace, '1 Z(I) 2 D C t T Z(I)');
  assert.deepEqual(a.lent, [2, 1]);
  assert.deepEqual(
    pool.backends[0]!.log.map((l) => l.split(':')[0]),
    ['Q', 'Q', 'P', 'B', 'E', 'D', 'S'],
  );
});

test('Close then re-Parse of a name; a Parse of a name in use gets 42P05 and the messages up to Sync are dropped', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('s', 'SELECT 1'), sync());
  await a.readies(1);
  a.send(parse('s', 'SELECT 2'), bind('', 's'), execute(), sync());
  await a.readies(2);
  assert.equal(a.trace, '1 Z(I) E(42P05) Z(I)');
  assert.equal(a.errors()[0]!.M, 'prepared statement "s" already exists');
  a.send(close('S', 's'), parse('s', 'SELECT 2'), bind('', 's'), execute(), sync());
  await a.readies(3);
  assert.equal(a.trace, '1 Z(I) E(42P05) Z(I) 3 1 2 D C Z(I)');
  const log = pool.backends[0]!.log;
  // The server never saw the failed Parse, the Bind after it, nor a Close of the shared statement.
  assert.deepEqual(
    log.map((l) => l.split(':')[0]),
    ['P', 'S', 'S', 'P', 'B', 'E', 'S'],
  );
  const row = a.received.filter((m) => m.type === 'D').at(-1)!;
  assert.equal(row.body.toString('latin1', 6), '2');
});

test('an error in the middle of a pipeline: later answers dropped up to Sync, no synthetic ParseComplete after it', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('s', 'SELECT 1'), sync());
  await a.readies(1);
  // 'bad' fails at the server; the Parse of 's2' (which the connection has) would be answered
  // by the gateway, but the server would have skipped it.
  const other = new Client(pool);
  other.send(parse('x', 'SELECT 9'), sync());
  await other.readies(1);
  a.send(parse('bad', 'FAIL'), bind('', 'bad'), execute(), parse('s2', 'SELECT 9'), bind('', 's'), execute(), sync());
  await a.readies(2);
  // Nothing after the error took effect: 's2' is not defined, 'bad' neither.
  a.send(parse('s2', 'SELECT 9'), bind('', 's2'), execute(), sync(), parse('bad', 'SELECT 8'), sync());
  await a.readies(4);
  assert.equal(a.trace, '1 Z(I) E(42601) Z(I) 1 2 D C Z(I) 1 Z(I)');
});

test('a simple Query with several statements, and an error inside it', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('SELECT 1; SELECT 2; SELECT ERROR; SELECT 3'));
  await a.readies(1);
  assert.equal(a.trace, 'T D C T D C E(22012) Z(I)');
  assert.deepEqual(pool.returns, ['1:idle']);
});

test('LISTEN: 0A000 from a Query (aborting as PostgreSQL would) and from a Parse', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('  /* x */ listen chan'));
  await a.readies(1);
  a.send(parse('', 'LISTEN chan'), bind('', ''), execute(), sync());
  await a.readies(2);
  assert.equal(a.trace, 'E(0A000) Z(I) E(0A000) Z(I)');
  assert.deepEqual(
    a.errors().map((e) => e.M),
    [LISTEN_MESSAGE, LISTEN_MESSAGE],
  );
  a.send(query('SELECT listener'));
  await a.readies(3);
  assert.equal(a.errors().length, 2);
});

test('the per-connection statement cap evicts the least recently used with a Close on the server', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool, { perServer: 2, perClient: 100 });
  a.send(parse('a', 'SELECT a'), parse('b', 'SELECT b'), bind('', 'a'), execute(), parse('c', 'SELECT c'), sync());
  await a.readies(1);
  assert.equal(a.trace, '1 1 2 D C 1 Z(I)');
  const conn = pool.conns[0]!;
  assert.equal(conn.prepared.size, 2);
  const log = pool.backends[0]!.log;
  const closed = log.find((l) => l.startsWith('C:S:'));
  assert.ok(closed, log.join(' '));
  // 'b' was the least recently used ('a' was bound after it): binding it again re-prepares it.
  a.send(bind('', 'b'), execute(), sync());
  await a.readies(2);
  assert.equal(a.trace, '1 1 2 D C 1 Z(I) 2 D C Z(I)');
  assert.equal(pool.backends[0]!.statements.size, 2);
});

test('names the client never prepared go to the server as they are: its own error, its own name', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(bind('', 'nope'), execute(), sync(), close('S', 'nope'), sync());
  await a.readies(2);
  assert.equal(a.trace, 'E(26000) Z(I) 3 Z(I)');
  assert.equal(a.errors()[0]!.M, 'prepared statement "nope" does not exist');
});
