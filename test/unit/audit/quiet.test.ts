// Quiet statements, the JavaScript half: the native relay puts a key record before a simple
// Query it could relay unobserved; the session observer asks its consumers whether they need
// anything of that Query and, when all say no, hands the key back (onQuiet) so the addon skips
// that shape from then on. The statement audit says no only for statements it records nothing
// of and that change nothing it follows; the SQL watch always needs every statement.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Classifier, isAudited, parseClassList } from '../../../src/audit/classify/index.js';
import { StatementAuditConsumer, type StatementEvent } from '../../../src/audit/tap/index.js';
import { SessionObserver, type QuerySummary } from '../../../src/pgwire/observer/index.js';
import { SqlWatch } from '../../../src/threat/sql-watch.js';
import { SqlInjectionDetector } from '../../../src/threat/sql/detector.js';
import { StatementAuditPolicies } from '../../../src/audit/statement-audit.js';
import { DEFAULT_AUDIT_SETTINGS } from '../../../src/audit/settings.js';
import * as w from './classify/wire.js';

const KEY = Buffer.from('0123456789abcdef');

/** The addon's key record: 0x00, Int32 24, Int32 'k', 16 bytes. */
function keyRecord(key: Buffer = KEY): Buffer {
  const r = Buffer.alloc(25);
  r.writeInt32BE(24, 1);
  r.writeInt32BE(0x6b, 5);
  key.copy(r, 9);
  return r;
}

function setup(
  classes = 'ROLE,DDL',
  withWatch = false,
  settled?: (text: string) => boolean,
  more: { classifier?: Classifier; maxTextBytes?: number; now?: () => number } = {},
) {
  const parsed = parseClassList(classes);
  assert.ok('classes' in parsed);
  const statements: StatementEvent[] = [];
  const errors: string[] = [];
  const audit = new StatementAuditConsumer({
    classifier: more.classifier ?? new Classifier(),
    ...(more.maxTextBytes !== undefined ? { maxTextBytes: more.maxTextBytes } : {}),
    ...(more.now !== undefined ? { now: more.now } : {}),
    include: (info) => isAudited(info, parsed.classes),
    onStatement: (e) => statements.push(e),
    onError: (r) => errors.push(r),
  });
  const seen: string[] = [];
  const consumers = [
    audit,
    ...(withWatch ? [new SqlWatch({ statement: (text) => seen.push(text), error: () => undefined, ...(settled ? { settled } : {}) })] : []),
  ];
  const quiet: Buffer[] = [];
  const summaries: QuerySummary[] = [];
  const observer = new SessionObserver(consumers, {
    skipRecords: true,
    onQuiet: (k, summary) => (summary === undefined ? quiet.push(k) : summaries.push(summary)),
  });
  /** One keyed Query and its answer, as the addon observes them. */
  const run = (text: string, answer: Buffer = w.cat(w.commandComplete('SELECT 1'), w.ready())) => {
    observer.fromClient(w.cat(keyRecord(), w.query(text)));
    observer.fromServer(answer);
  };
  return { observer, statements, errors, quiet, summaries, run, seen };
}

describe('quiet statements: which keyed Queries come back as quiet', () => {
  it('a SELECT under ROLE,DDL is quiet (its key comes back); a DDL is recorded and is not', () => {
    const s = setup();
    s.run('SELECT abalance FROM pgbench_accounts WHERE aid = 4711;');
    assert.deepEqual(s.quiet, [KEY]);
    s.run('CREATE TABLE quiet_t (a int)', w.cat(w.commandComplete('CREATE TABLE'), w.ready()));
    assert.equal(s.quiet.length, 1, 'a recorded statement is not quiet');
    s.observer.end();
    assert.deepEqual(
      s.statements.map((e) => e.commandTag),
      ['CREATE TABLE'],
    );
    assert.deepEqual(s.errors, []);
  });

  it('not quiet: a string with a recorded statement, a refused parse, a COPY, SQL PREPARE, the end of a transaction', () => {
    const s = setup('ROLE,DDL');
    for (const text of [
      'SELECT 1; DROP TABLE quiet_t',
      'SELEC 1 FROM nowhere',
      'COPY quiet_t TO STDOUT',
      'PREPARE q AS SELECT 1',
      'DEALLOCATE q',
      'DISCARD ALL',
      'COMMIT',
      'ROLLBACK',
      'END',
    ])
      s.run(text);
    assert.deepEqual(s.quiet, []);
  });

  it('with READ audited a SELECT is recorded, so not quiet; with every class, nothing is', () => {
    const r = setup('READ');
    r.run('SELECT 1');
    r.run('INSERT INTO t VALUES (1)', w.cat(w.commandComplete('INSERT 0 1'), w.ready()));
    assert.equal(r.quiet.length, 1, 'only the INSERT');
    const all = setup('ALL');
    all.run('SELECT 1');
    all.run('BEGIN', w.cat(w.commandComplete('BEGIN'), w.ready('T')));
    assert.deepEqual(all.quiet, []);
  });

  it('a configuration that audits every class records every statement: its sessions get no quiet set', () => {
    const policies = new StatementAuditPolicies();
    const with_ = (classes: readonly string[]) =>
      policies.forServer(classes.join(), { ...DEFAULT_AUDIT_SETTINGS, classes: classes as never })!.recordsEverything;
    assert.equal(with_(['ROLE', 'DDL']), false);
    assert.equal(with_(['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC']), true, 'MISC brings MISC_SET');
    assert.equal(with_(['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL']), false);
  });

  it('a SQL watch that cannot vouch for a shape (no settled verdict) keeps every statement observed', () => {
    const s = setup('ROLE,DDL', true);
    s.run('SELECT 1');
    assert.deepEqual(s.quiet, []);
    assert.deepEqual(s.seen, ['SELECT 1']);
  });

  it('the SQL watch says quiet only for a shape its detector judged for good', () => {
    const detector = new SqlInjectionDetector({ cacheEntries: 100 });
    const s = setup('ROLE,DDL', true, (text) => detector.settled({ role: 'app', application: 'web', text }));
    s.run("SELECT id FROM items WHERE name = 'lamp'");
    // An injection pattern is never settled: every statement of it is judged.
    s.run("SELECT id FROM items WHERE name = '' OR '1'='1'");
    // Both consumers must agree: the audit records a DDL.
    s.run('CREATE TABLE quiet_t (a int)', w.cat(w.commandComplete('CREATE TABLE'), w.ready()));
    assert.equal(s.quiet.length, 1);
    assert.equal(s.seen.length, 3, 'the watch saw every statement it was given');
  });

  it('detector: settled for a clean shape when nothing is learned, or when the shape is a learned one', () => {
    const d = new SqlInjectionDetector({ cacheEntries: 100 });
    const scope = { role: 'app', application: 'web' };
    assert.equal(d.settled({ ...scope, text: 'SELECT 1 FROM t WHERE a = 5' }), true);
    assert.equal(d.settled({ ...scope, text: "SELECT 1 FROM t WHERE a = '' OR 1=1 --'" }), false);
    assert.equal(d.settled({ ...scope, text: 'SELEC 1' }), false, 'does not parse');
    // The application's shapes are learned: only its learned shapes are settled.
    d.inspect({ ...scope, text: 'SELECT a FROM t WHERE id = 1', timeMs: 0, learn: true });
    assert.equal(d.settled({ ...scope, text: 'SELECT a FROM t WHERE id = 2' }), true);
    assert.equal(d.settled({ ...scope, text: 'SELECT b FROM t WHERE id = 2' }), false, 'not a learned shape: judged each time');
    assert.equal(d.settled({ role: 'other', application: 'web', text: 'SELECT b FROM t WHERE id = 2' }), true, 'nothing learned for that role');
  });

  it('a keyed Parse is quiet for a statement the audit records nothing of (its Bind/Execute groups may go unobserved)', () => {
    const s = setup();
    const answer = w.cat(w.parseComplete(), w.bindComplete(), w.commandComplete('SELECT 1'), w.ready());
    s.observer.fromClient(w.cat(keyRecord(), w.parse('', 'SELECT * FROM t WHERE id = $1'), w.bind('', '', ['1']), w.execute(), w.sync()));
    s.observer.fromServer(answer);
    assert.deepEqual(s.quiet, [KEY]);
    s.observer.fromClient(w.cat(keyRecord(), w.parse('s1', 'DROP TABLE t'), w.sync()));
    s.observer.fromServer(w.cat(w.parseComplete(), w.ready()));
    assert.equal(s.quiet.length, 1, 'a DDL is recorded when executed: not quiet');
  });

  it('the unnamed record: the unnamed statement and portal are forgotten, so nothing is attributed to them', () => {
    const s = setup();
    s.observer.fromClient(w.cat(w.parse('', 'SELECT 1'), w.bind('', ''), w.execute(), w.sync()));
    s.observer.fromServer(w.cat(w.parseComplete(), w.bindComplete(), w.commandComplete('SELECT 1'), w.ready()));
    // Unobserved: a quiet group replaced them. An Execute of the unnamed portal without a Bind
    // is then of an unknown statement, which is audited, not the stale SELECT, which is not.
    const unnamed = Buffer.from([0, 0, 0, 0, 8, 0, 0, 0, 0x75]);
    s.observer.fromClient(w.cat(unnamed, w.execute(), w.sync()));
    s.observer.fromServer(w.cat(w.commandComplete('SELECT 0'), w.ready()));
    s.observer.end();
    assert.deepEqual(
      s.statements.map((e) => e.class),
      ['UNKNOWN'],
    );
    assert.deepEqual(s.errors, []);
  });

  it('a key goes with the Query right after it only; a Query without a key is never quiet', () => {
    const s = setup();
    s.observer.fromClient(w.cat(keyRecord(), w.sync(), w.query('SELECT 1')));
    s.observer.fromServer(w.cat(w.ready(), w.commandComplete('SELECT 1'), w.ready()));
    s.observer.fromClient(w.query('SELECT 2'));
    assert.deepEqual(s.quiet, []);
  });

  it('a malformed key record stops the audit (fail closed)', () => {
    const s = setup();
    const bad = keyRecord();
    bad.writeInt32BE(0x6a, 5);
    s.observer.fromClient(w.cat(bad, w.query('SELECT 1')));
    assert.deepEqual(s.errors, ['invalid key record']);
    assert.deepEqual(s.quiet, []);
  });
});

describe('summarized statements: a recorded Query whose record its shape, text, times and tag make', () => {
  const SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = 4711;';

  it('a recorded SELECT of numbers is summarized; its summary makes the record observing it makes', () => {
    let clock = 1000;
    const s = setup('READ', false, undefined, { now: () => clock });
    s.run(SELECT);
    assert.deepEqual(s.quiet, [], 'recorded: not quiet');
    assert.equal(s.summaries.length, 1);
    // Another statement of the shape, observed in one session and summarized in another.
    const text = 'SELECT abalance FROM pgbench_accounts WHERE aid = 86213;';
    const observed = setup('READ', false, undefined, { now: () => clock });
    clock = 2000;
    observed.observer.fromClient(w.query(text));
    clock = 2000.25;
    observed.observer.fromServer(w.cat(w.commandComplete('SELECT 1'), w.ready()));
    s.observer.summarized(s.summaries[0]!, text, 2000, 2000.25, 'SELECT 1');
    assert.equal(s.statements.length, 2);
    assert.deepEqual(s.statements[1], observed.statements[0]);
    assert.deepEqual(
      [s.statements[1]!.text, s.statements[1]!.rows, s.statements[1]!.durationMs, s.statements[1]!.outcome],
      ['SELECT abalance FROM pgbench_accounts WHERE aid = 86213', 1, 0.25, 'success'],
    );
    assert.deepEqual(s.errors, []);
  });

  it('blanks and semicolons around the statement are left out, as the classifier leaves them', () => {
    const s = setup('ALL');
    s.run(' \n SELECT 100 ;; ');
    s.observer.summarized(s.summaries[0]!, ' \n SELECT 987654 ;; ', 1, 2, 'SELECT 1');
    assert.deepEqual(
      s.statements.map((e) => e.text),
      ['SELECT 100', 'SELECT 987654'],
    );
  });

  it('the tag gives the rows (none when it does not count them, or when there was no tag)', () => {
    const s = setup('ALL');
    s.run('UPDATE t SET a = a + 1 WHERE id = 100', w.cat(w.commandComplete('UPDATE 3'), w.ready()));
    s.run('SET work_mem = 1024', w.cat(w.commandComplete('SET'), w.ready()));
    assert.equal(s.summaries.length, 2);
    s.observer.summarized(s.summaries[0]!, 'UPDATE t SET a = a + 1 WHERE id = 200', 1, 2, 'UPDATE 7');
    s.observer.summarized(s.summaries[1]!, 'SET work_mem = 2048', 1, 2, 'SET');
    s.observer.summarized(s.summaries[0]!, 'UPDATE t SET a = a + 1 WHERE id = 300', 1, 2, null);
    const got = s.statements.slice(2).map((e) => [e.text, e.commandTag, e.rows, e.class]);
    assert.deepEqual(got, [
      ['UPDATE t SET a = a + 1 WHERE id = 200', 'UPDATE', 7, 'WRITE'],
      ['SET work_mem = 2048', 'SET', undefined, 'MISC_SET'],
      ['UPDATE t SET a = a + 1 WHERE id = 300', 'UPDATE', undefined, 'WRITE'],
    ]);
  });

  it('not summarized: a string literal (a secret the classifier redacts could be in one), a password, a redacted column, two statements, a cut text', () => {
    const s = setup('ALL', false, undefined, { classifier: new Classifier({ redactColumns: ['ssn'] }), maxTextBytes: 64 });
    for (const text of [
      "SELECT dblink_connect('host=db1')",
      'SELECT 1 AS password',
      'SELECT name FROM people WHERE ssn = 123456789',
      'SELECT 1; SELECT 2',
      `SELECT ${'a, '.repeat(40)}1`,
      'SELECT 100 -- not keyed',
    ])
      s.run(text);
    assert.deepEqual(
      s.summaries.map((x) => (x as { info: { text: string } }).info.text),
      ['SELECT 100 -- not keyed'],
      'only the last (the relay never keys it: it stays observed)',
    );
  });

  it('not summarized: what changes what the joiner follows, what it cannot classify, what is not recorded, a redaction pattern', () => {
    const s = setup('ALL');
    for (const text of ['COMMIT', 'PREPARE q AS SELECT 1', 'DISCARD ALL', 'SELEC 1', 'COPY t TO STDOUT', 'CREATE TABLE t2 (a int)']) s.run(text);
    assert.deepEqual(s.summaries, []);
    const r = setup('ROLE,DDL');
    r.run('SELECT 100');
    assert.equal(r.quiet.length, 1, 'not recorded: quiet');
    assert.deepEqual(r.summaries, []);
    const p = setup('ALL', false, undefined, { classifier: new Classifier({ redactPatterns: [/^4[0-9]{15}$/] }) });
    p.run('SELECT 100');
    assert.deepEqual(p.summaries, [], 'a pattern can match a number');
  });

  it('with the SQL watch, only when the watch has settled the shape; a Parse is never summarized', () => {
    const unsettled = setup('ALL', true);
    unsettled.run('SELECT 100');
    assert.deepEqual(unsettled.summaries, []);
    const settled = setup('ALL', true, () => true);
    settled.run('SELECT 100');
    assert.equal(settled.summaries.length, 1);
    settled.observer.fromClient(w.cat(keyRecord(), w.parse('', 'SELECT 100'), w.bind('', ''), w.execute(), w.sync()));
    settled.observer.fromServer(w.cat(w.parseComplete(), w.bindComplete(), w.commandComplete('SELECT 1'), w.ready()));
    assert.equal(settled.summaries.length, 1);
    assert.deepEqual(settled.quiet, []);
  });

  it('a summary after the audit stopped records nothing (the session is being ended)', () => {
    const s = setup('ALL');
    s.run('SELECT 100');
    const bad = keyRecord();
    bad.writeInt32BE(0x6a, 5);
    s.observer.fromClient(w.cat(bad, w.query('SELECT 1')));
    s.observer.summarized(s.summaries[0]!, 'SELECT 200', 1, 2, 'SELECT 1');
    assert.deepEqual(s.errors, ['invalid key record']);
    assert.equal(s.statements.length, 1);
  });
});
