// The frontend and backend taps and the statement joiner, on byte streams built with the
// protocol serializers: simple and extended protocol, pipelining with an error in the middle,
// COPY both ways, function calls, parameters and their redaction.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Classifier, isAudited } from '../../../../src/audit/classify/index.js';
import { SessionAudit, type StatementEvent } from '../../../../src/audit/tap/index.js';
import { BackendDecoder, FrontendDecoder, LONG_FIELD, type BackendEvent, type FrontendEvent } from '../../../../src/pgwire/observer/index.js';
import { run, type Step } from './harness.js';
import * as w from './wire.js';

const brief = (events: readonly StatementEvent[]) => events.map((e) => [e.class, e.commandTag, e.outcome, e.sqlstate ?? null, e.rows ?? null, e.text]);

describe('simple Query', () => {
  it('one statement: class, tag, objects, rows, duration', () => {
    const { events } = run([
      ['client', w.query('SELECT * FROM app.t')],
      ['server', w.cat(w.rowDescription(['a']), w.dataRow(['1']), w.dataRow(['2']), w.dataRow([null]), w.commandComplete('SELECT 3'), w.ready())],
    ]);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.deepEqual(
      { text: e.text, class: e.class, commandTag: e.commandTag, objects: e.objects, outcome: e.outcome, rows: e.rows, protocol: e.protocol },
      {
        text: 'SELECT * FROM app.t',
        class: 'READ',
        commandTag: 'SELECT',
        objects: [{ kind: 'relation', name: 'app.t' }],
        outcome: 'success',
        rows: 3,
        protocol: 'simple',
      },
    );
    assert.ok(e.durationMs > 0);
  });

  it('a multi-statement string gives one event per CommandComplete', () => {
    const { events } = run([
      ['client', w.query('BEGIN; INSERT INTO t VALUES (1); UPDATE t SET a = 2; COMMIT')],
      ['server', w.cat(w.commandComplete('BEGIN'), w.commandComplete('INSERT 0 1'), w.commandComplete('UPDATE 4'), w.commandComplete('COMMIT'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [
      ['MISC', 'BEGIN', 'success', null, null, 'BEGIN'],
      ['WRITE', 'INSERT', 'success', null, 1, 'INSERT INTO t VALUES (1)'],
      ['WRITE', 'UPDATE', 'success', null, 4, 'UPDATE t SET a = 2'],
      ['MISC', 'COMMIT', 'success', null, null, 'COMMIT'],
    ]);
  });

  it('an error ends the string: later statements never ran and are not reported', () => {
    const { events } = run([
      ['client', w.query('INSERT INTO t VALUES (1); SELECT 1/0; DELETE FROM t')],
      ['server', w.cat(w.commandComplete('INSERT 0 1'), w.error('22012', 'division by zero'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [
      ['WRITE', 'INSERT', 'success', null, 1, 'INSERT INTO t VALUES (1)'],
      ['READ', 'SELECT', 'failure', '22012', null, 'SELECT 1/0'],
    ]);
    assert.equal(events[1]!.errorMessage, 'division by zero');
  });

  it('a syntax error: one UNKNOWN failure with the parser error', () => {
    const { events } = run([
      ['client', w.query('SELEC 1')],
      ['server', w.cat(w.error('42601', 'syntax error at or near "SELEC"'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [['UNKNOWN', '???', 'failure', '42601', null, 'SELEC 1']]);
    assert.match(events[0]!.parseError!, /syntax error/);
  });

  it('an empty query gives nothing; notices and parameter status are ignored', () => {
    const { events } = run([
      ['client', w.query('  ')],
      ['server', w.cat(w.emptyQuery(), w.notice(), w.parameterStatus('TimeZone', 'UTC'), w.ready())],
    ]);
    assert.deepEqual(events, []);
  });

  it('a failed implicit commit fails the statement', () => {
    const { events } = run([
      ['client', w.query('INSERT INTO t VALUES (1)')],
      ['server', w.cat(w.commandComplete('INSERT 0 1'), w.error('23505', 'duplicate key value violates unique constraint'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [['WRITE', 'INSERT', 'failure', '23505', 1, 'INSERT INTO t VALUES (1)']]);
  });

  it('passwords never reach the event', () => {
    const { events } = run([
      ['client', w.query("ALTER ROLE bob PASSWORD 'hunter2'")],
      ['server', w.cat(w.commandComplete('ALTER ROLE'), w.ready())],
    ]);
    assert.equal(events[0]!.text, "ALTER ROLE bob PASSWORD '<redacted>'");
    assert.ok(!JSON.stringify(events).includes('hunter2'));
  });
});

describe('COPY', () => {
  it('COPY FROM STDIN: WRITE, rows from the tag, client bytes counted', () => {
    const { events } = run([
      ['client', w.query('COPY t FROM STDIN')],
      ['server', w.copyInResponse()],
      ['client', w.cat(w.copyData('1\tone\n'), w.copyData('2\ttwo\n'), w.copyData('3\tthree\n'), w.copyDone())],
      ['server', w.cat(w.commandComplete('COPY 3'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [['WRITE', 'COPY', 'success', null, 3, 'COPY t FROM STDIN']]);
    assert.equal(events[0]!.copyBytes, 20);
  });

  it('COPY TO STDOUT: READ, server bytes counted', () => {
    const { events } = run([
      ['client', w.query('COPY t TO STDOUT')],
      ['server', w.cat(w.copyOutResponse(), w.copyDataOut('1\tone\n'), w.copyDataOut('2\ttwo\n'), w.copyDoneOut(), w.commandComplete('COPY 2'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [['READ', 'COPY', 'success', null, 2, 'COPY t TO STDOUT']]);
    assert.equal(events[0]!.copyBytes, 12);
  });
});

describe('extended protocol', () => {
  it('pipelined Parse/Bind/Execute with an error in the middle: the rest up to Sync is skipped', () => {
    const { events } = run([
      [
        'client',
        w.cat(
          w.parse('', 'INSERT INTO t VALUES ($1)'),
          w.bind('', '', ['1']),
          w.execute(),
          w.parse('', 'SELECT * FROM missing'),
          w.bind('', ''),
          w.describe('P'),
          w.execute(),
          w.parse('', 'DELETE FROM t'),
          w.bind('', ''),
          w.execute(),
          w.sync(),
        ),
      ],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.commandComplete('INSERT 0 1'), w.error('42P01', 'relation "missing" does not exist'), w.ready())],
      ['client', w.cat(w.parse('', 'DELETE FROM t'), w.bind('', ''), w.execute(), w.sync())],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.commandComplete('DELETE 5'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [
      ['WRITE', 'INSERT', 'success', null, 1, 'INSERT INTO t VALUES ($1)'],
      ['READ', 'SELECT', 'failure', '42P01', null, 'SELECT * FROM missing'],
      ['WRITE', 'DELETE', 'success', null, 5, 'DELETE FROM t'],
    ]);
    assert.ok(events.every((e) => e.protocol === 'extended'));
  });

  it('an error in Bind fails that Execute; an error in Parse without Execute is still reported', () => {
    const { events } = run([
      ['client', w.cat(w.parse('s1', 'SELECT * FROM t WHERE id = $1'), w.sync())],
      ['server', w.cat(w.parseComplete(), w.ready())],
      ['client', w.cat(w.bind('', 's1', ['not a number']), w.execute(), w.sync())],
      ['server', w.cat(w.error('22P02', 'invalid input syntax for type integer'), w.ready())],
      ['client', w.cat(w.parse('s2', 'SELEC 1'), w.describe('S', 's2'), w.sync())],
      ['server', w.cat(w.error('42601', 'syntax error'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [
      ['READ', 'SELECT', 'failure', '22P02', null, 'SELECT * FROM t WHERE id = $1'],
      ['UNKNOWN', '???', 'failure', '42601', null, 'SELEC 1'],
    ]);
  });

  it('named statements are reused by later Binds; parameters only when asked, redacted where configured', () => {
    const classifier = new Classifier({ redactColumns: ['ssn'], redactPatterns: [/^4111/] });
    const steps: Step[] = [
      ['client', w.cat(w.parse('ins', 'INSERT INTO p (name, ssn, card, note) VALUES ($1, $2, $3, $4)'), w.describe('S', 'ins'), w.sync())],
      ['server', w.cat(w.parseComplete(), w.noData(), w.ready())],
    ];
    for (const name of ['ann', 'bob']) {
      steps.push(['client', w.cat(w.bind('', 'ins', [name, '123-45-6789', '4111-1111-1111-1111', null]), w.execute(), w.sync())]);
      steps.push(['server', w.cat(w.bindComplete(), w.commandComplete('INSERT 0 1'), w.ready())]);
    }
    const logged = run(steps, { classifier, logParameters: true }).events;
    assert.deepEqual(
      logged.map((e) => e.params),
      [
        ['ann', '<redacted>', '<redacted>', null],
        ['bob', '<redacted>', '<redacted>', null],
      ],
    );
    const quiet = run(steps, { classifier }).events;
    assert.equal(quiet.length, 2);
    assert.ok(quiet.every((e) => e.params === undefined && e.class === 'WRITE'));
  });

  it('PortalSuspended reports the rows sent so far; the next Execute continues the portal', () => {
    const { events } = run([
      ['client', w.cat(w.parse('', 'SELECT * FROM t'), w.bind('c', ''), w.execute('c', 2), w.flush())],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.dataRow(['1']), w.dataRow(['2']), w.portalSuspended())],
      ['client', w.cat(w.execute('c', 2), w.sync())],
      ['server', w.cat(w.dataRow(['3']), w.commandComplete('SELECT 1'), w.ready())],
    ]);
    assert.deepEqual(brief(events), [
      ['READ', 'SELECT', 'success', null, 2, 'SELECT * FROM t'],
      ['READ', 'SELECT', 'success', null, 1, 'SELECT * FROM t'],
    ]);
  });

  it('an empty prepared statement gives nothing', () => {
    const { events } = run([
      ['client', w.cat(w.parse('', ''), w.bind('', ''), w.execute(), w.sync())],
      ['server', w.cat(w.parseComplete(), w.bindComplete(), w.emptyQuery(), w.ready())],
    ]);
    assert.deepEqual(events, []);
  });
});

describe('function calls, session end, filtering', () => {
  it('FunctionCall is a FUNCTION event', () => {
    const { events } = run(
      [
        ['client', w.functionCall(16384, ['x'])],
        ['server', w.cat(w.functionResult('y'), w.ready())],
      ],
      { logParameters: true },
    );
    assert.deepEqual(brief(events), [['FUNCTION', 'FUNCTION CALL', 'success', null, null, '']]);
    assert.deepEqual(events[0]!.objects, [{ kind: 'function', name: 'function oid 16384' }]);
    assert.deepEqual(events[0]!.params, ['x']);
    assert.equal(events[0]!.protocol, 'function');
  });

  it('statements without an answer when the session ends are reported as unknown', () => {
    const { events } = run([['client', w.query('SELECT pg_sleep(60); SELECT 2')]], { end: true });
    assert.deepEqual(
      events.map((e) => [e.text, e.outcome]),
      [
        ['SELECT pg_sleep(60)', 'unknown'],
        ['SELECT 2', 'unknown'],
      ],
    );
  });

  it('a failed commit after a filtered-out statement does not fail an earlier one', () => {
    const { events } = run(
      [
        ['client', w.query('SELECT 1; INSERT INTO t VALUES (1)')],
        ['server', w.cat(w.commandComplete('SELECT 1'), w.commandComplete('INSERT 0 1'), w.error('23505', 'deferred'), w.ready())],
      ],
      { include: (info) => info.class === 'READ' },
    );
    assert.deepEqual(brief(events), [['READ', 'SELECT', 'success', null, 1, 'SELECT 1']]);
  });

  it('simple-protocol events carry no params even when parameters are logged', () => {
    const { events } = run(
      [
        ['client', w.query('SELECT 1')],
        ['server', w.cat(w.commandComplete('SELECT 1'), w.ready())],
      ],
      { logParameters: true },
    );
    assert.equal(events[0]!.params, undefined);
  });

  it('only statements the filter accepts become events', () => {
    const enabled = new Set(['WRITE', 'DDL']);
    const { events } = run(
      [
        ['client', w.query('SELECT 1; INSERT INTO t VALUES (1); CREATE TABLE u (a int)')],
        ['server', w.cat(w.commandComplete('SELECT 1'), w.commandComplete('INSERT 0 1'), w.commandComplete('CREATE TABLE'), w.ready())],
      ],
      { include: (info) => isAudited(info, enabled) },
    );
    assert.deepEqual(
      events.map((e) => e.commandTag),
      ['INSERT', 'CREATE TABLE'],
    );
  });
});

describe('taps', () => {
  it('the frontend tap decodes text, binary and NULL values, and suppresses long ones', () => {
    const events: FrontendEvent[] = [];
    const tap = new FrontendDecoder({ onEvent: (e) => events.push(e), logParameters: true, maxParameterBytes: 8 });
    tap.push(w.bind('p', 's', ['abc', Buffer.from([1, 2, 255]), null, 'x'.repeat(9)], [0, 1, 0, 0]));
    assert.deepEqual(events, [{ type: 'bind', portal: 'p', statement: 's', params: ['abc', '\\x0102ff', null, LONG_FIELD] }]);
  });

  it('the frontend tap cuts long statements and says so', () => {
    const events: FrontendEvent[] = [];
    const tap = new FrontendDecoder({ onEvent: (e) => events.push(e), maxStatementBytes: 10 });
    tap.push(w.query(`SELECT '${'x'.repeat(5000)}'`));
    tap.push(w.sync());
    assert.deepEqual(events, [{ type: 'query', text: "SELECT 'xx", truncated: true }, { type: 'sync' }]);
  });

  it('the backend tap skips DataRows by length, counting them, and reads the row count of tags', () => {
    const events: BackendEvent[] = [];
    const tap = new BackendDecoder({ onEvent: (e) => events.push(e) });
    const rows = Array.from({ length: 1000 }, (_, i) => w.dataRow([String(i), 'x'.repeat(i % 50)]));
    tap.push(
      w.cat(
        w.rowDescription(['a', 'b']),
        ...rows,
        w.commandComplete('SELECT 1000'),
        w.commandComplete('INSERT 0 7'),
        w.commandComplete('CREATE TABLE'),
        w.ready('T'),
      ),
    );
    assert.deepEqual(events, [
      { type: 'commandComplete', tag: 'SELECT', rows: 1000, dataRows: 1000, copyBytes: 0 },
      { type: 'commandComplete', tag: 'INSERT', rows: 7, dataRows: 0, copyBytes: 0 },
      { type: 'commandComplete', tag: 'CREATE TABLE', dataRows: 0, copyBytes: 0 },
      { type: 'ready', status: 'T' },
    ]);
  });

  it('a bad length stops the tap for the session and is reported once', () => {
    const errors: string[] = [];
    const events: StatementEvent[] = [];
    const audit = new SessionAudit({ classifier: new Classifier(), onStatement: (e) => events.push(e), onError: (r) => errors.push(r) });
    audit.fromClient(w.query('SELECT 1'));
    audit.fromServer(Buffer.from([0x43, 0, 0, 0, 2])); // length 2 < 4
    audit.fromServer(w.cat(w.commandComplete('SELECT 1'), w.ready()));
    audit.fromClient(w.query('SELECT 2'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /invalid message length 2/);
    assert.equal(audit.error, errors[0]);
    assert.deepEqual(
      events.map((e) => [e.text, e.outcome]),
      [['SELECT 1', 'unknown']],
    );
  });
});
