// The transaction-mode relay's lending over in-memory streams (fakes in transaction-fakes.ts): a
// connection held for a transaction and given back at ReadyForQuery 'I', clients waiting in turn,
// and the ends of a session (client gone, Terminate, server gone, no connection in time,
// terminate() from the gateway); ParameterStatus kept on the connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoolWaitError } from '../../../../src/gateway/pool/types.js';
import { parse, bind, describe, execute, sync, flush, query, terminate, FakePool, Client } from './transaction-fakes.js';

for (const lendsAtOnce of [true, false])
  test(`BEGIN…COMMIT over several messages keeps one connection; it is given back only at I (${lendsAtOnce ? 'lent at once' : 'lent by promise'})`, async () => {
    const pool = new FakePool(2);
    pool.lendsAtOnce = lendsAtOnce;
    const a = new Client(pool);
    a.send(query('BEGIN'));
    await a.readies(1);
    assert.equal(a.session.current()?.id, 1);
    a.send(parse('s', 'SELECT 1'), bind('', 's'), execute(), sync());
    await a.readies(2);
    a.send(query('SELECT ERROR'));
    await a.readies(3);
    assert.equal(a.session.current()?.id, 1, 'kept in a failed transaction (E)');
    a.send(query('ROLLBACK'));
    await a.readies(4);
    assert.equal(a.trace, 'C Z(T) 1 2 D C Z(T) E(22012) Z(E) C Z(I)');
    assert.equal(a.session.current(), null);
    assert.deepEqual(a.lent, [1]);
    assert.deepEqual(pool.returns, ['1:idle']);
  });

test('Flush without Sync keeps the connection until the Sync', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('s', 'SELECT 1'), describe('S', 's'), flush());
  while (a.received.length < 3) await new Promise((r) => setImmediate(r));
  assert.equal(a.trace, '1 t T');
  assert.equal(a.session.current()?.id, 1);
  a.send(sync());
  await a.readies(1);
  assert.equal(a.session.current(), null);
  const log = pool.backends[0]!.log;
  assert.match(log[1]!, /^D:S:pgw_/);
});

test('client gone mid-transaction: the connection is given back broken', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  a.socket.destroy();
  while (a.endStats === null) await new Promise((r) => setImmediate(r));
  assert.deepEqual(pool.returns, ['1:broken']);
});

test('Terminate when idle ends quietly; the connection was already back', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('SELECT 1'));
  await a.readies(1);
  a.send(terminate());
  await a.end();
  assert.deepEqual(pool.returns, ['1:idle']);
  assert.ok(!pool.backends[0]!.log.includes('X'), 'the server never sees the Terminate');
  assert.equal(a.errors().length, 0);
});

test('the server closes while lent: 08006 FATAL to the client, the connection broken', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  pool.backends[0]!.socket.destroy();
  await a.end();
  assert.equal(a.trace, 'C Z(T) E(08006)');
  assert.equal(a.errors()[0]!.S, 'FATAL');
  assert.deepEqual(pool.returns, ['1:broken']);
});

test('no server connection in time: the PoolWaitError as a FATAL error', async () => {
  const pool = new FakePool(1);
  pool.failWith = new PoolWaitError('53300', 'no server connection available in time');
  const a = new Client(pool);
  a.send(query('SELECT 1'));
  await a.end();
  assert.equal(a.trace, 'E(53300)');
  assert.deepEqual(a.errors()[0], { S: 'FATAL', V: 'FATAL', C: '53300', M: 'no server connection available in time' });
});

for (const lendsAtOnce of [true, false])
  test(`clients beyond the pool wait and get a connection in turn; every client sees its own answers (${lendsAtOnce ? 'lent at once' : 'lent by promise'})`, async () => {
    const pool = new FakePool(2);
    pool.lendsAtOnce = lendsAtOnce;
    const clients = Array.from({ length: 10 }, () => new Client(pool));
    for (const [i, c] of clients.entries()) c.send(parse('s', `SELECT ${i}`), bind('', 's'), execute(), sync(), query(`SELECT q${i}`));
    await Promise.all(clients.map((c) => c.readies(2)));
    clients.forEach((c, i) => {
      assert.equal(c.trace, '1 2 D C Z(I) T D C Z(I)');
      const rows = c.received.filter((m) => m.type === 'D').map((m) => m.body.toString('latin1', 6));
      assert.deepEqual(rows, [String(i), `q${i}`]);
    });
    assert.equal(pool.idle.length, 2);
  });

test('terminate() from the gateway: FATAL with the given SQLSTATE at a boundary, the lent connection broken', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  a.session.terminate({ sqlstate: '57P01', message: 'terminated by the security policy' });
  await a.end();
  assert.equal(a.trace, 'C Z(T) E(57P01)');
  assert.equal(a.errors()[0]!.S, 'FATAL');
  assert.deepEqual(pool.returns, ['1:broken']);
  assert.equal(a.session.current(), null);
});

test('ParameterStatus reaches the client and is kept on the connection', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('SET LOCAL application_name = app1'));
  await a.readies(1);
  assert.equal(a.trace, 'S C Z(I)');
  assert.equal(pool.conns[0]!.parameters.get('application_name'), 'app1');
});
