// Framing and lexing counted over a transaction-mode session (issue 17), with the statement audit
// and the SQL watch on. Each message is framed once: the client's by the relay as it arrives
// (client-framing.ts), which hands it to the observer already framed and keeps it until a server
// connection is lent; the server's by the relay (it reads every header to route the answers),
// which hands each message it passes on to the observer already framed; the answers the gateway
// makes itself once, by the observer. Each statement text is lexed once. The observer sees a
// client's statements when they arrive, not when the pool lends a connection: the audit times
// them from their arrival.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Classifier } from '../../../../src/audit/classify/index.js';
import { StatementAuditConsumer, type StatementEvent } from '../../../../src/audit/tap/index.js';
import { framingCounters } from '../../../../src/pgwire/index.js';
import { lexCounters } from '../../../../src/sql/shape-cache.js';
import { SqlWatch } from '../../../../src/threat/sql-watch.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { bind, close, describe, execute, parse, query, sync, terminate, split, FakePool, Client } from './transaction-fakes.js';

test('each server message framed once, each answer the gateway makes framed once, each statement lexed once', async () => {
  const events: StatementEvent[] = [];
  const errors: string[] = [];
  const audit = new StatementAuditConsumer({ classifier: new Classifier(), onStatement: (e) => events.push(e), onError: (r) => errors.push(r) });
  const watched: string[] = [];
  const watch = new SqlWatch({ statement: (text) => watched.push(text), error: () => {} });
  const pool = new FakePool(1);
  const c = new Client(pool, undefined, undefined, [audit, watch]);
  c.chunkSize = 7; // headers and bodies cut between chunks
  const select = `SELECT 1 FROM t_${randomBytes(6).toString('hex')}`;
  const sent = [
    [query('BEGIN')],
    // Close of the client's statement: answered by the gateway (CloseComplete), not the server.
    [parse('s1', select), bind('', 's1'), describe('P', ''), execute(), sync(), close('S', 's1'), sync()],
    [query('COMMIT')],
  ];
  const framed0 = framingCounters.messages;
  const lexed0 = lexCounters.texts;
  let readies = 0;
  for (const batch of sent) {
    c.send(...batch);
    readies += batch.filter((b) => b[0] === 0x51 || b[0] === 0x53).length; // Query, Sync
    await c.readies(readies);
  }
  c.send(terminate());
  await c.end();

  const clientMessages = sent.flat().reduce((n, b) => n + split(b).messages.length, 0);
  assert.equal(c.trace, 'C Z(T) 1 2 T D C Z(T) 3 Z(T) C Z(I)');
  // One answer (CloseComplete, '3') was the gateway's own: the server sent the others.
  const fromServer = c.received.length - 1;
  assert.equal(
    framingCounters.messages - framed0,
    // The Terminate, sent with no connection lent, is framed once too (and never handed over).
    fromServer + 1 + clientMessages + 1,
    'server messages framed once (by the relay), the CloseComplete once (by the observer), client messages once (by the relay, at arrival)',
  );
  // The observer followed what the client got: the server's answers and the gateway's own.
  assert.deepEqual(
    c.backend.map((e) => e.type),
    ['commandComplete', 'ready', 'parseComplete', 'commandComplete', 'ready', 'closeComplete', 'ready', 'commandComplete', 'ready'],
  );
  assert.equal(lexCounters.texts - lexed0, 3, 'BEGIN, the SELECT and COMMIT each lexed once, with audit and SQL watch both on');
  assert.deepEqual(watched, ['BEGIN', select, 'COMMIT']);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    events.map((e) => e.commandTag),
    ['BEGIN', 'SELECT', 'COMMIT'],
  );
});

test('statements that wait for a server connection: framed once, at arrival, and timed from it', async () => {
  const events: StatementEvent[] = [];
  const errors: string[] = [];
  const audit = new StatementAuditConsumer({ classifier: new Classifier(), onStatement: (e) => events.push(e), onError: (r) => errors.push(r) });
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  assert.equal(a.session.current()?.id, 1, "the pool's one connection is held by another client");

  const b = new Client(pool, undefined, undefined, [audit]);
  // A named statement: rewritten to the gateway's name once a connection is lent.
  const sent = [query('SELECT 2'), parse('s2', 'SELECT 3'), bind('', 's2'), execute(), sync()];
  const framed0 = framingCounters.messages;
  b.send(...sent);
  while (b.frontend.length < sent.length) await new Promise((r) => setImmediate(r));
  assert.deepEqual(b.lent, [], 'no connection lent yet');
  assert.deepEqual(
    b.frontend.map((e) => e.type),
    ['query', 'parse', 'bind', 'execute', 'sync'],
    'the observer saw the statements as they arrived',
  );
  assert.equal(framingCounters.messages - framed0, sent.length, 'framed once, at arrival');

  await sleep(200);
  const framed1 = framingCounters.messages;
  a.send(query('COMMIT'));
  await a.readies(2);
  await b.readies(2);
  assert.deepEqual(b.lent, [1]);
  assert.equal(b.trace, 'T D C Z(I) 1 2 D C Z(I)');
  assert.match(pool.backend(1).log.find((l) => l.startsWith('P:'))!, /^P:pgw_[^:]+:SELECT 3$/, 'rewritten when the connection was lent');
  b.send(terminate());
  await b.end();
  // Once the connection is lent, b's messages are handed over without being framed again: what is
  // framed now is a's COMMIT and the answers both got, and b's Terminate (no connection lent).
  const answers = 2 + b.received.length;
  assert.equal(framingCounters.messages - framed1, 1 + answers + 1);
  assert.ok(!pool.backend(1).log.includes('X'), 'the server never sees the Terminate');

  assert.deepEqual(errors, []);
  assert.deepEqual(
    events.map((e) => [e.text, e.outcome]),
    [
      ['SELECT 2', 'success'],
      ['SELECT 3', 'success'],
    ],
  );
  // Timed from its arrival: the wait for the connection is in it.
  assert.ok(events[0]!.durationMs >= 150, `durationMs ${events[0]!.durationMs} includes the wait for a connection`);
});
