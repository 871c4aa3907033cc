// The transaction-mode relay's streams over in-memory streams (fakes in transaction-fakes.ts): COPY
// both ways, messages cut into one-byte chunks or spanning chunks, and the strict-audit hold on
// the server's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, bind, describe, execute, close, sync, query, copyData, copyDone, FakePool, Client } from './transaction-fakes.js';

test('COPY FROM STDIN and COPY TO STDOUT, simple and extended', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('COPY t FROM STDIN'));
  while (!a.received.some((m) => m.type === 'G')) await new Promise((r) => setImmediate(r));
  a.send(copyData('1\n'), copyData('2\n'), copyDone());
  await a.readies(1);
  assert.equal(a.trace, 'G C Z(I)');
  // Extended, as libpq does it: Sync right after Execute (ignored in copy-in), another after CopyDone.
  a.send(parse('', 'COPY t FROM STDIN'), bind('', ''), execute(), sync());
  while (a.received.filter((m) => m.type === 'G').length < 2) await new Promise((r) => setImmediate(r));
  assert.notEqual(a.session.current(), null);
  a.send(copyData('3\n'), copyDone(), sync());
  await a.readies(2);
  assert.equal(a.trace, 'G C Z(I) 1 2 G C Z(I)');
  a.send(query('COPY t TO STDOUT'), parse('out', 'COPY t TO STDOUT'), bind('', 'out'), execute(), sync());
  await a.readies(4);
  assert.equal(a.trace, 'G C Z(I) 1 2 G C Z(I) H d d c C Z(I) 1 2 H d d c C Z(I)');
  assert.equal(a.session.current(), null);
  assert.deepEqual(pool.returns, ['1:idle', '1:idle', '1:idle']);
});

test('one byte per chunk both ways: the same answers, the same rewriting', async () => {
  const pool = new FakePool(1);
  pool.backends[0]!.dribble = true;
  const other = new Client(pool);
  other.send(parse('o', 'SELECT 4'), sync());
  await other.readies(1);
  const a = new Client(pool);
  a.dribble = true;
  a.send(
    query('BEGIN'),
    parse('s', 'SELECT 4'),
    bind('', 's'),
    describe('S', 's'),
    execute(),
    sync(),
    parse('s', 'SELECT 5'),
    bind('', 's'),
    sync(),
    close('S', 's'),
    parse('t', 'SELECT 6'),
    bind('', 't'),
    execute(),
    sync(),
    query('COMMIT'),
  );
  await a.readies(5);
  assert.equal(a.trace, 'C Z(T) 1 2 t T D C Z(T) E(42P05) Z(T) 3 1 2 D C Z(T) C Z(I)');
  assert.deepEqual(
    pool.backends[0]!.log.map((l) => l.split(':')[0]),
    ['P', 'S', 'Q', 'B', 'D', 'E', 'S', 'S', 'P', 'B', 'E', 'S', 'Q'],
  );
  assert.deepEqual(pool.returns, ['1:idle', '1:idle']);
  // The observer saw the client-facing stream: the client's names, the gateway's answers.
  assert.deepEqual(
    a.frontend.filter((e) => e.type === 'parse').map((e) => (e as { name: string }).name),
    ['s', 's', 't'],
  );
  assert.deepEqual(
    a.backend.filter((e) => e.type === 'parseComplete' || e.type === 'error').map((e) => e.type),
    ['parseComplete', 'error', 'parseComplete'],
  );
});

test('strict audit durability: server bytes wait for the hold before the client gets them', async () => {
  const pool = new FakePool(1);
  let release: (() => void) | null = null;
  let holds = 0;
  // The first chunk waits for the test; the rest find the log durable already.
  const hold = () => {
    holds++;
    if (release !== null) return null;
    return new Promise<void>((r) => {
      release = r;
    });
  };
  const a = new Client(pool, undefined, hold);
  a.send(query('SELECT 1'));
  while (release === null) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(a.received.length, 0);
  (release as () => void)();
  await a.readies(1);
  assert.equal(a.trace, 'T D C Z(I)');
  assert.ok(holds >= 1);
});

test('messages larger than a chunk, read whole across chunks: the same answers', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.chunkSize = 1000;
  const long = `SELECT ${'x'.repeat(40_000)}`;
  a.send(parse('big', long), bind('', 'big'), execute(), sync(), query(long));
  await a.readies(2);
  assert.equal(a.trace, '1 2 D C Z(I) T D C Z(I)');
  const rows = a.received.filter((m) => m.type === 'D').map((m) => m.body.length);
  assert.deepEqual(rows, [6 + 40_000, 6 + 40_000]);
  assert.match(pool.backends[0]!.log[0]!, /^P:pgw_[0-9a-f]{32}:SELECT x{40000}$/);
});
