// The statement audit against the escapes of issue 15 (V2, V3, W5), on byte streams: COPY
// followed as the server follows it (Syncs inside COPY data are ignored, not waited for), the
// fail-closed stops, long texts cut with their length and SHA-256 (gateway, pgAudit lines longer
// than a read, events the store refuses as too large), and prepared statements never evicted.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Classifier } from '../../../src/audit/classify/index.js';
import { SessionAudit, type StatementEvent } from '../../../src/audit/tap/index.js';
import { collectLines, finishLines } from '../../../src/audit/pgaudit-scan.js';
import { fitEvent } from '../../../src/audit/fit-event.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { EventBus } from '../../../src/events/bus.js';
import type { AnyEvent } from '../../../src/events/types.js';
import { tempRoot } from './helpers.js';
import * as w from './classify/wire.js';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

function session(options: { maxPending?: number; maxPreparedBytes?: number; maxStatementBytes?: number } = {}) {
  const events: StatementEvent[] = [];
  const errors: string[] = [];
  const audit = new SessionAudit({ classifier: new Classifier(), onStatement: (e) => events.push(e), onError: (r) => errors.push(r), ...options });
  return {
    events,
    errors,
    client: (...parts: Buffer[]) => audit.fromClient(Buffer.concat(parts)),
    server: (...parts: Buffer[]) => audit.fromServer(Buffer.concat(parts)),
    texts: () => events.map((e) => [e.text, e.outcome]),
  };
}

const syncsWithData = (n: number) => {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 100 === 0) parts.push(w.copyData(`row ${i}\n`));
    parts.push(w.sync());
  }
  return Buffer.concat(parts);
};

describe('COPY as the server reads it', () => {
  it('Syncs inside COPY FROM STDIN data are ignored, not waited for: no bound reached, the next statement is audited', () => {
    const s = session({ maxPending: 10 });
    s.client(w.query('COPY t FROM STDIN'));
    s.server(w.copyInResponse());
    s.client(syncsWithData(150_000), w.copyDone());
    s.server(w.commandComplete('COPY 1500'), w.ready());
    s.client(w.query('CREATE TABLE after_copy (id int)'));
    s.server(w.commandComplete('CREATE TABLE'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts(), [
      ['COPY t FROM STDIN', 'success'],
      ['CREATE TABLE after_copy (id int)', 'success'],
    ]);
    assert.equal(s.events[0]!.rows, 1500);
  });

  it('the same sent before the server answered the COPY: judged when the answer comes', () => {
    const s = session({ maxPending: 10 });
    s.client(w.query('COPY t FROM STDIN'), syncsWithData(50_000), w.copyDone(), w.query('CREATE TABLE after_copy (id int)'));
    s.server(w.copyInResponse(), w.commandComplete('COPY 500'), w.ready(), w.commandComplete('CREATE TABLE'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts(), [
      ['COPY t FROM STDIN', 'success'],
      ['CREATE TABLE after_copy (id int)', 'success'],
    ]);
  });

  it('extended protocol: the Sync after Execute is read in copy mode; the one after CopyDone is answered', () => {
    const s = session({ maxPending: 10 });
    s.client(w.parse('', 'COPY t FROM STDIN'), w.bind('', ''), w.execute(), w.sync());
    s.server(w.parseComplete(), w.bindComplete(), w.copyInResponse());
    s.client(syncsWithData(1000), w.copyDone(), w.sync(), w.parse('', 'DROP TABLE t'), w.bind('', ''), w.execute(), w.sync());
    s.server(w.commandComplete('COPY 10'), w.ready(), w.parseComplete(), w.bindComplete(), w.commandComplete('DROP TABLE'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts(), [
      ['COPY t FROM STDIN', 'success'],
      ['DROP TABLE t', 'success'],
    ]);
  });

  it('Syncs outside a copy are each answered: a run of them is one queue entry', () => {
    const s = session({ maxPending: 5 });
    const syncs = Buffer.concat(Array.from({ length: 1000 }, () => w.sync()));
    s.client(w.query('SELECT 1'), syncs, w.query('SELECT 2'));
    s.server(w.commandComplete('SELECT 1'), w.ready(), Buffer.concat(Array.from({ length: 1000 }, () => w.ready())), w.commandComplete('SELECT 1'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts(), [
      ['SELECT 1', 'success'],
      ['SELECT 2', 'success'],
    ]);
  });

  it('a COPY that could not start: the data after it is ignored by the server, the next statement is audited', () => {
    const s = session();
    s.client(w.query('COPY missing FROM STDIN'), w.copyData('x\n'), w.copyDone(), w.query('CREATE TABLE x (id int)'));
    s.server(w.error('42P01', 'relation "missing" does not exist'), w.ready(), w.commandComplete('CREATE TABLE'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts(), [
      ['COPY missing FROM STDIN', 'failure'],
      ['CREATE TABLE x (id int)', 'success'],
    ]);
  });

  it('fails closed on what it cannot judge: another message inside COPY data; Syncs in data and then a failed COPY', () => {
    const a = session();
    a.client(w.query('COPY t FROM STDIN'));
    a.server(w.copyInResponse());
    a.client(w.copyData('1\n'), w.describe('S', ''));
    assert.deepEqual(a.errors, ['a message of type 0x44 during COPY FROM STDIN']);
    assert.deepEqual(a.texts(), [['COPY t FROM STDIN', 'unknown']], 'what was seen is still reported');

    const b = session();
    b.client(w.query('COPY t FROM STDIN'), w.copyData('1\n'), w.query('DROP TABLE t'));
    b.server(w.copyInResponse());
    assert.deepEqual(b.errors, ['a query message during COPY FROM STDIN']);

    const c = session();
    c.client(w.query('COPY t FROM STDIN'));
    c.server(w.copyInResponse());
    c.client(w.copyData('bad\n'), w.sync(), w.copyData('2\n'), w.copyDone());
    c.server(w.error('22P02', 'invalid input syntax for type integer: "bad"'));
    assert.equal(c.errors.length, 1);
    assert.match(c.errors[0]!, /^Sync messages inside COPY data, and the COPY failed/);
  });

  it('copy-both is read as copy-in on the client side', () => {
    const s = session({ maxPending: 10 });
    s.client(w.query('START_REPLICATION SLOT s LOGICAL 0/0'));
    s.server(Buffer.from([0x57, 0, 0, 0, 7, 0, 0, 0]));
    s.client(syncsWithData(500), w.copyDone());
    assert.deepEqual(s.errors, []);
  });
});

describe('prepared statements are never evicted', () => {
  it('the first of 10,001 named statements keeps its text', () => {
    const s = session();
    const parts: Buffer[] = [];
    for (let i = 0; i <= 10_000; i++) parts.push(w.parse(`s${i}`, `SELECT ${i} AS marker_${i}`));
    s.client(...parts, w.sync());
    s.server(...Array.from({ length: 10_001 }, () => w.parseComplete()), w.ready());
    s.client(w.bind('', 's0'), w.execute(), w.sync());
    s.server(w.bindComplete(), w.commandComplete('SELECT 1'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts(), [['SELECT 0 AS marker_0', 'success']]);
  });

  it('over the byte budget the audit stops (the session is ended) instead of forgetting; Close frees', () => {
    const s = session({ maxPreparedBytes: 64 * 1024 });
    for (let i = 0; i < 40; i++) s.client(w.parse(`a${i}`, `SELECT ${i}`), w.close('S', `a${i}`));
    assert.deepEqual(s.errors, []);
    for (let i = 0; i < 1000 && s.errors.length === 0; i++) s.client(w.parse(`b${i}`, `SELECT ${i} /* ${'x'.repeat(100)} */`));
    assert.equal(s.errors.length, 1);
    assert.match(s.errors[0]!, /prepared statements and portals of this session need more than/);
  });

  it('a Parse the server refuses (the name exists) or skips (after an error) leaves the text the server still has', () => {
    const s = session();
    s.client(w.parse('s1', 'DELETE FROM accounts'), w.sync());
    s.server(w.parseComplete(), w.ready());
    s.client(w.parse('s1', 'SELECT 1'), w.sync());
    s.server(w.error('42P05', 'prepared statement "s1" already exists'), w.ready());
    s.client(w.parse('', 'SELEC broken'), w.parse('s1', 'SELECT 2'), w.close('S', 's1'), w.sync());
    s.server(w.error('42601', 'syntax error at or near "SELEC"'), w.ready());
    s.client(w.bind('', 's1'), w.execute(), w.sync());
    s.server(w.bindComplete(), w.commandComplete('DELETE 3'), w.ready());
    assert.deepEqual(s.errors, []);
    assert.deepEqual(s.texts().at(-1), ['DELETE FROM accounts', 'success']);
  });

  it('a Close applies at CloseComplete, and not to the statement declared again after it', () => {
    const s = session();
    s.client(w.parse('s1', 'SELECT 1 AS first'), w.sync());
    s.server(w.parseComplete(), w.ready());
    s.client(w.close('S', 's1'), w.parse('s1', 'SELECT 2 AS second'), w.bind('', 's1'), w.execute(), w.sync());
    s.server(w.closeComplete(), w.parseComplete(), w.bindComplete(), w.commandComplete('SELECT 1'), w.ready());
    s.client(w.bind('', 's1'), w.execute(), w.sync());
    s.server(w.bindComplete(), w.commandComplete('SELECT 1'), w.ready());
    assert.deepEqual(s.texts(), [
      ['SELECT 2 AS second', 'success'],
      ['SELECT 2 AS second', 'success'],
    ]);
  });

  it('a statement prepared with SQL PREPARE and run by a protocol Bind carries the PREPARE text, not an empty one', () => {
    const s = session();
    s.client(w.query('PREPARE wipe AS DELETE FROM accounts'));
    s.server(w.commandComplete('PREPARE'), w.ready());
    s.client(w.bind('', 'wipe'), w.execute(), w.sync());
    s.server(w.bindComplete(), w.commandComplete('DELETE 2'), w.ready());
    const e = s.events.at(-1)!;
    assert.deepEqual([e.text, e.class, e.commandTag, e.outcome, e.rows], ['PREPARE wipe AS DELETE FROM accounts', 'WRITE', 'DELETE', 'success', 2]);
  });

  it('SQL DEALLOCATE forgets only what was declared before it', () => {
    const s = session();
    s.client(w.parse('p1', 'SELECT 1 AS old_text'), w.sync());
    s.server(w.parseComplete(), w.ready());
    s.client(w.query('DEALLOCATE p1'), w.parse('p1', 'SELECT 2 AS new_text'), w.sync(), w.bind('', 'p1'), w.execute(), w.sync());
    s.server(w.commandComplete('DEALLOCATE'), w.ready(), w.parseComplete(), w.ready(), w.bindComplete(), w.commandComplete('SELECT 1'), w.ready());
    assert.deepEqual(s.texts().at(-1), ['SELECT 2 AS new_text', 'success']);
  });
});

describe('long texts: cut, with the whole length and SHA-256', () => {
  it('a statement longer than an event keeps (8 KiB)', () => {
    const s = session();
    const ddl = `CREATE TABLE t (id int /* ${'é'.repeat(10_000)} */)`;
    s.client(w.query(ddl));
    s.server(w.commandComplete('CREATE TABLE'), w.ready());
    const e = s.events[0]!;
    assert.equal(e.truncated, true);
    assert.equal(e.textLength, Buffer.byteLength(ddl));
    assert.equal(e.textSha256, sha256(ddl));
    assert.ok(ddl.startsWith(e.text) && Buffer.byteLength(e.text) <= 8192 && Buffer.byteLength(e.text) >= 8191, 'never half a character');
    assert.equal(e.class, 'DDL');
  });

  it('a text longer than the tap reads, arriving in pieces: hashed as it streams by', () => {
    const s = session({ maxStatementBytes: 1000 });
    const text = `SELECT '${'y'.repeat(50_000)}'`;
    const msg = w.query(text);
    for (let at = 0; at < msg.length; at += 7_001) s.client(msg.subarray(at, at + 7_001));
    s.server(w.commandComplete('SELECT 1'), w.ready());
    const e = s.events[0]!;
    assert.deepEqual([e.truncated, e.textLength, e.textSha256], [true, Buffer.byteLength(text), sha256(text)]);
    assert.ok(text.startsWith(e.text));
  });
});

describe('pgAudit lines longer than one read', () => {
  function jsonlog(pid: number, statement: string): string {
    return JSON.stringify({
      timestamp: '2026-01-02 03:04:05.678 UTC',
      user: 'alice',
      dbname: 'postgres',
      pid,
      error_severity: 'LOG',
      message: `AUDIT: SESSION,1,2,DDL,CREATE TABLE,TABLE,public.t,"${statement.replaceAll('"', '""')}",<not logged>`,
      application_name: 'psql',
      backend_type: 'client backend',
    });
  }

  it('is read to its end in pieces, kept cut with its measure, and the lines after it are read too', () => {
    const { root } = tempRoot();
    const dir = path.join(root, 'log');
    mkdirSync(dir);
    const file = path.join(dir, 'postgresql.json');
    const long = `CREATE TABLE t (id int /* "quoted" ${'z\n'.repeat(20_000)} */)`;
    writeFileSync(file, `${jsonlog(7, 'SELECT 1')}\n${jsonlog(8, long)}\n`);
    const servers = [{ name: 's1', dir }];
    let offsets: Record<string, number> = {};
    const seen: AnyEvent[] = [];
    for (let i = 0; i < 5; i++) {
      const c = collectLines(servers, offsets, 4096);
      offsets = { ...offsets, ...c.offsets };
      seen.push(...finishLines(c.lines, new Map()));
    }
    appendFileSync(file, `${jsonlog(9, 'SELECT 3')}\n`);
    const c = collectLines(servers, offsets, 4096);
    seen.push(...finishLines(c.lines, new Map()));
    const statements = seen.map((e) => (e as { statement: string }).statement);
    assert.equal(statements.length, 3, statements.join(' | ').slice(0, 200));
    const e = seen[1] as { statement: string; truncated?: boolean; textLength?: number; textSha256?: string; backendPid: number };
    assert.equal(e.backendPid, 8);
    assert.deepEqual([e.truncated, e.textLength, e.textSha256], [true, Buffer.byteLength(long), sha256(long)]);
    assert.ok(long.startsWith(e.statement) && Buffer.byteLength(e.statement) === 8192);
    assert.equal(statements[2], 'SELECT 3');
    assert.equal(offsets[file], readFileSync(file).length - Buffer.byteLength(`${jsonlog(9, 'SELECT 3')}\n`));
  });
});

describe('events the store refuses as too large', () => {
  it('fitEvent cuts long strings and arrays and says what it cut', () => {
    const text = 'q'.repeat(20_000);
    const fitted = fitEvent({ type: 'statement', text, params: Array.from({ length: 1000 }, (_, i) => String(i)), errorMessage: 'e'.repeat(9000) }, 8192);
    assert.deepEqual([fitted.truncated, fitted.textLength, fitted.textSha256, (fitted.text as string).length], [true, 20_000, sha256(text), 8192]);
    assert.equal((fitted.params as string[]).length, 256);
    assert.deepEqual(Object.keys(fitted.cutFields as object).sort(), ['errorMessage', 'params']);
  });

  it('AuditLog writes an oversized event cut down; one that still cannot be written raises the failure path and leaves a record', async () => {
    const { root, dir, keyFile } = tempRoot();
    const bus = new EventBus();
    const failures: string[] = [];
    const log = await AuditLog.open(
      {
        dir,
        keyFile,
        witnessFile: path.join(root, 'w.json'),
        durability: 'strict',
        policy: 'failClosed',
        log: pino({ level: 'silent' }),
        onFailure: (e) => failures.push(e.message),
      },
      bus,
    );
    const big = `SELECT '${'b'.repeat(2 * 1024 * 1024)}'`;
    const base = { time: new Date().toISOString(), connection: { connId: 'c1', clientAddress: '127.0.0.1', clientPort: 1, listener: 'public' as const } };
    bus.publish({
      type: 'statement',
      ...base,
      text: big,
      class: 'READ',
      classes: ['READ'],
      commandTag: 'SELECT',
      objects: [],
      outcome: 'success',
      durationMs: 1,
      protocol: 'simple',
    });
    assert.deepEqual(failures, []);
    // Many small fields: nothing to cut, still over 1 MiB.
    const wide: Record<string, string> = {};
    for (let i = 0; i < 120_000; i++) wide[`k${i}`] = 'v';
    bus.publish({
      type: 'admin.action',
      time: base.time,
      actor: { tokenId: 't', name: 'n', role: 'Owner' },
      action: 'x',
      target: 'y',
      outcome: 'success',
      details: wide,
    } as AnyEvent);
    assert.equal(failures.length, 1);
    await log.durable();
    await log.close();
    const records = readdirSync(dir)
      .filter((n) => n.startsWith('segment-'))
      .flatMap((n) => readFileSync(path.join(dir, n), 'utf8').split('\n').filter(Boolean))
      .map((l) => (JSON.parse(l) as { event: Record<string, unknown> }).event);
    const st = records.find((r) => r.type === 'statement')!;
    assert.deepEqual([st.truncated, st.textLength, st.textSha256], [true, Buffer.byteLength(big), sha256(big)]);
    const dropped = records.find((r) => r.type === 'audit.record-dropped');
    assert.equal((dropped?.details as { eventType?: string } | undefined)?.eventType, 'admin.action');
  });
});
