// One pass over a relayed session with the statement audit AND the SQL watch on: every message
// is framed once (one framer per direction, shared by both consumers and the relay's boundary
// tracking), every statement text is lexed once and, on a cache miss, parsed once. Counted with
// the counters the framer, the shape cache and the parser keep, over a scripted session (simple
// query, an extended-protocol pipeline, COPY FROM STDIN, errors), fed in odd-sized chunks.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Classifier } from '../../../src/audit/classify/index.js';
import { StatementAuditConsumer, type StatementEvent } from '../../../src/audit/tap/index.js';
import { framingCounters, SessionObserver } from '../../../src/pgwire/observer/index.js';
import { lexCounters } from '../../../src/sql/shape-cache.js';
import { parseCounters } from '../../../src/sql/parser.js';
import { SqlWatch } from '../../../src/threat/sql-watch.js';
import { SqlInjectionDetector } from '../../../src/threat/sql/detector.js';
import * as w from './classify/wire.js';

/** Messages in a buffer of whole messages. */
function messages(buf: Buffer): number {
  let n = 0;
  for (let at = 0; at < buf.length; at += 1 + buf.readInt32BE(at + 1)) n++;
  return n;
}

function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; at += size) out.push(buf.subarray(at, at + size));
  return out;
}

describe('one pass per relayed session', () => {
  it('frames each message once and lexes and parses each statement once, with audit and SQL watch both on', () => {
    // A table name of its own: no text of this session is in the shape cache yet.
    const t = `t_${randomBytes(6).toString('hex')}`;
    const texts = {
      simple: `SELECT 1 AS a FROM ${t}; SELECT 'x'::text FROM ${t} WHERE 2 > 1`,
      prepared: `SELECT * FROM ${t} WHERE id = 42`,
      update: `UPDATE ${t} SET v = 'q' WHERE id = 7`,
      copy: `COPY ${t} FROM STDIN`,
      bad: `SELEC 1 FROM ${t} WHERE x = 'oops'`,
      division: `SELECT 1 / 0 AS z FROM ${t} WHERE 3 = 3`,
    };
    const script: ['client' | 'server', Buffer][] = [
      ['client', w.query(texts.simple)],
      [
        'server',
        w.cat(
          w.rowDescription(['a']),
          w.dataRow(['1']),
          w.commandComplete('SELECT 1'),
          w.rowDescription(['text']),
          w.dataRow(['x']),
          w.commandComplete('SELECT 1'),
          w.ready(),
        ),
      ],
      [
        'client',
        w.cat(
          w.parse('s1', texts.prepared),
          w.bind('', 's1', ['5']),
          w.describe('P'),
          w.execute(),
          w.sync(),
          w.parse('', texts.update),
          w.bind('', ''),
          w.execute(),
          w.sync(),
        ),
      ],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.rowDescription(['id']), w.dataRow(['42']), w.commandComplete('SELECT 1'), w.ready())],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.commandComplete('UPDATE 1'), w.ready())],
      ['client', w.query(texts.copy)],
      ['server', w.copyInResponse()],
      ['client', w.cat(w.copyData('1\tone\n'), w.copyData('2\ttwo\n'), w.copyDone())],
      ['server', w.cat(w.commandComplete('COPY 2'), w.ready())],
      ['client', w.query(texts.bad)],
      ['server', w.cat(w.error('42601', 'syntax error at or near "SELEC"'), w.ready())],
      ['client', w.cat(w.parse('', texts.division), w.bind('', ''), w.execute(), w.sync())],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.error('22012', 'division by zero'), w.ready())],
      ['client', w.terminate()],
    ];
    const expectedMessages = script.reduce((n, [, bytes]) => n + messages(bytes), 0);

    const events: StatementEvent[] = [];
    const errors: string[] = [];
    const audit = new StatementAuditConsumer({ classifier: new Classifier(), onStatement: (e) => events.push(e), onError: (r) => errors.push(r) });
    const detector = new SqlInjectionDetector();
    const watched: string[] = [];
    const sqlstates: string[] = [];
    const watch = new SqlWatch({
      statement: (text) => {
        watched.push(text);
        detector.inspect({ role: 'app', application: 'test', text, timeMs: 0 });
      },
      error: (sqlstate, lastText) => {
        sqlstates.push(sqlstate);
        detector.inspect({ role: 'app', application: 'test', text: lastText, sqlstate, timeMs: 0 });
      },
    });
    const observer = new SessionObserver([audit, watch]);

    const framed0 = framingCounters.messages;
    const lexed0 = lexCounters.texts;
    const parsed0 = parseCounters.parses;
    const scanned0 = parseCounters.scans;
    for (const [side, bytes] of script) {
      for (const c of chunks(bytes, 7)) {
        if (side === 'client') observer.fromClient(c);
        else observer.fromServer(c);
      }
    }
    observer.end();

    assert.deepEqual(errors, []);
    assert.equal(framingCounters.messages - framed0, expectedMessages, 'each message framed once');
    assert.equal(lexCounters.texts - lexed0, Object.keys(texts).length, 'each statement text lexed once');
    assert.equal(parseCounters.parses - parsed0, Object.keys(texts).length, 'each statement text parsed once');
    assert.ok(parseCounters.scans - scanned0 <= Object.keys(texts).length, 'each statement text scanned at most once');

    // Both consumers saw the whole session.
    assert.deepEqual(watched, Object.values(texts));
    assert.deepEqual(sqlstates, ['42601', '22012']);
    assert.deepEqual(
      events.map((e) => [e.commandTag, e.outcome]),
      [
        ['SELECT', 'success'],
        ['SELECT', 'success'],
        ['SELECT', 'success'],
        ['UPDATE', 'success'],
        ['COPY', 'success'],
        ['???', 'failure'],
        ['SELECT', 'failure'],
      ],
    );
    assert.equal(observer.clientTerminated, true);
    assert.equal(observer.serverAtBoundary, true);

    // The same statements again: served from the one shape cache, nothing lexed or parsed twice.
    const again = new SessionObserver([new StatementAuditConsumer({ classifier: new Classifier(), onStatement: () => {} }), watch]);
    const lexed1 = lexCounters.texts;
    const parsed1 = parseCounters.parses;
    again.fromClient(w.query(texts.prepared));
    again.fromClient(w.query(texts.prepared.replace('id = 42', 'id = 43'))); // not the table name, which may hold "42"
    assert.equal(lexCounters.texts - lexed1, 2, 'one lex per text');
    assert.equal(parseCounters.parses - parsed1, 1, 'a new classifier parses the shape once; the next text of that shape is not parsed');
  });
});
