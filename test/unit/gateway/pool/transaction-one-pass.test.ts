// Framing and lexing counted over a transaction-mode session (issue 17), with the statement audit
// and the SQL watch on: the relay frames the server's stream (it reads every header to route the
// answers) and hands each message it passes on to the observer already framed, so each server
// message is framed once, and the answers the gateway makes itself are framed once, by the
// observer. Each statement text is lexed once. The client's stream is still framed twice: by the
// observer as each chunk arrives (the audit times a statement from its arrival, before a server
// connection is lent) and by the relay once a connection is lent (client-stream.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Classifier } from '../../../../src/audit/classify/index.js';
import { StatementAuditConsumer, type StatementEvent } from '../../../../src/audit/tap/index.js';
import { framingCounters } from '../../../../src/pgwire/index.js';
import { lexCounters } from '../../../../src/sql/shape-cache.js';
import { SqlWatch } from '../../../../src/threat/sql-watch.js';
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
    // The Terminate, sent with no connection lent, is framed by the observer alone.
    fromServer + 1 + 2 * clientMessages + 1,
    'server messages framed once (by the relay), the CloseComplete once (by the observer), client messages twice (observer, relay)',
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
