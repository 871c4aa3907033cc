// pgAudit on a managed server logs, in the sessions the gateway opens, only the statements the
// gateway cannot see (ext/pgwarden_audit): those inside functions, DO blocks and triggers. Checked
// in the server's own jsonlog files, not only in what the platform keeps, and after errors and
// exception blocks. Sessions the gateway did not open (the platform's own) are logged fully.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { allowLoopback, auditEvents, startTestPlatform, until, type TestPlatform, setAuditClasses } from '../helpers/platform.js';
import { pgwardenAuditInstalled } from '../helpers/pgaudit.js';
import { conninfo, gatewayClient } from '../helpers/clients.js';

const PASSWORD = 'Nested-Audit-Passw0rd!';
const SERVER = 'nested1';
let t: TestPlatform;
let serverId: number;

interface LogLine {
  message?: string;
  application_name?: string;
  backend_type?: string;
}

/** The pgAudit lines in the server's own log files, for one application name (the session's
 * backend; parallel workers log their part of a plan as pgAudit does without the library). */
function pgauditLines(app: string): string[] {
  const dir = t.platform.servers.logDir(serverId);
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    for (const line of readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line.includes('AUDIT: ')) continue;
      try {
        const l = JSON.parse(line) as LogLine;
        if (l.application_name === app && l.backend_type !== 'parallel worker' && l.message?.startsWith('AUDIT: ')) out.push(l.message);
      } catch {
        /* a line being written */
      }
    }
  }
  return out;
}

const available = pgwardenAuditInstalled();

before(async () => {
  if (!available) return;
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'owner', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  serverId = t.platform.snapshots.snapshot.servers.get(SERVER)!.id;
  await setAuditClasses(t, SERVER, ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC']);
});
after(async () => t?.stop());

const ownerClient = (app: string, options?: string) => gatewayClient(t, { server: SERVER, user: 'owner', password: PASSWORD, app, options });

test('gateway sessions: top-level SELECT and DML are not logged twice; statements in functions, DO blocks and triggers are, joined to the session', {
  skip: available ? false : 'needs pgaudit and ext/pgwarden_audit installed',
}, async () => {
  const c = await ownerClient('nested-app');
  // A client cannot switch the marker off: the gateway's own startup parameter comes last.
  const marker = await c.query("select current_setting('pgwarden_audit.gateway_session') v");
  assert.equal(marker.rows[0].v, 'on');
  const sly = await ownerClient('nested-sly', '-c pgwarden_audit.gateway_session=off');
  assert.equal((await sly.query("select current_setting('pgwarden_audit.gateway_session') v")).rows[0].v, 'on');
  await assert.rejects(sly.query('set pgwarden_audit.gateway_session = off'), /cannot be set after connection start/);
  await sly.end();
  await c.query('create table accounts (id int primary key, balance int)');
  await c.query('create table history (id int, delta int)');
  await c.query(`create function credit(a int, d int) returns int language plpgsql as $$
    begin
      update accounts set balance = balance + d where id = a;
      return (select balance from accounts where id = a);
    end $$`);
  await c.query(`create function log_history() returns trigger language plpgsql as $$
    begin insert into history values (new.id, new.balance); return new; end $$`);
  await c.query('create trigger accounts_history after insert on accounts for each row execute function log_history()');
  await c.query('insert into accounts values (1, 100), (2, 50)');
  await c.query('select balance from accounts where id = 1');
  await c.query({ text: 'select balance from accounts where id = $1', values: [2] });
  await c.query('select credit(1, 5)');
  await c.query('do $$ begin perform count(*) from history; end $$');
  // A top-level error in the executor, then a nested one caught by an exception block: the
  // switching is undone each time.
  await assert.rejects(c.query('select 1 / (balance - balance) from accounts'), /division by zero/);
  await c.query(`do $$ begin
      begin perform 1 / (balance - balance) from accounts; exception when division_by_zero then null; end;
      perform balance from accounts where id = 2;
    end $$`);
  // Utility statements that commit inside (VACUUM; a procedure with COMMIT), a failed transaction
  // block and a savepoint: after each, the same split holds.
  await c.query('vacuum accounts');
  await c.query(`create procedure batch() language plpgsql as $$
    begin insert into history values (7, 7); commit; perform id from history where id = 7; end $$`);
  await c.query('call batch()');
  await c.query('begin');
  await assert.rejects(c.query('select 1 / (balance - balance) from accounts'), /division by zero/);
  await c.query('rollback');
  await c.query('begin');
  await c.query('savepoint s1');
  await assert.rejects(c.query('select credit(1, 1 / 0)'), /division by zero/);
  await c.query('rollback to savepoint s1');
  await c.query('select credit(2, 1)');
  await c.query('commit');
  // Nothing left behind by the savepoint's nest levels: pgaudit.log is as configured between statements.
  assert.equal((await c.query("select current_setting('pgaudit.log') v")).rows[0].v, 'read,write,function,role,ddl,misc');
  await c.query('select id from accounts where id = 2');
  // A parallel plan: its workers start their part at level 0, in parallel mode (no SET there).
  await c.query('set parallel_setup_cost = 0; set parallel_tuple_cost = 0; set min_parallel_table_scan_size = 0; set max_parallel_workers_per_gather = 2');
  await c.query('create table wide as select g from generate_series(1, 200000) g');
  await c.query('analyze wide');
  const plan = await c.query('explain select count(*) from wide');
  assert.match(plan.rows.map((r: { 'QUERY PLAN': string }) => r['QUERY PLAN']).join('\n'), /Gather/);
  assert.equal((await c.query('select count(*) from wide')).rows[0].count, '200000');
  await c.end();

  const lines = await until(
    'the nested statements in the server log',
    async () => {
      const l = pgauditLines('nested-app');
      return l.filter((m) => m.includes(',WRITE,UPDATE,TABLE,public.accounts,')).length >= 2 && l;
    },
    10_000,
    100,
  ).catch((err: Error) => assert.fail(`${err.message}:\n${pgauditLines('nested-app').join('\n')}`));
  const has = (re: RegExp) => lines.some((m) => re.test(m));
  // Nested: the UPDATE and SELECT inside credit(), the trigger's INSERT, the DO blocks' statements.
  assert.ok(has(/,WRITE,UPDATE,TABLE,public\.accounts,update accounts set balance = balance \+ d/), lines.join('\n'));
  assert.ok(has(/,READ,SELECT,TABLE,public\.accounts,\(select balance from accounts where id = a\)/), lines.join('\n'));
  assert.ok(has(/,WRITE,INSERT,TABLE,public\.history,"?insert into history values \(new\.id, new\.balance\)/), lines.join('\n'));
  assert.ok(has(/,READ,SELECT,TABLE,public\.history,SELECT count\(\*\) from history/), lines.join('\n')); // PERFORM runs as SELECT
  assert.ok(has(/,READ,SELECT,TABLE,public\.accounts,SELECT balance from accounts where id = 2/), lines.join('\n'));
  assert.ok(has(/,READ,SELECT,TABLE,public\.accounts,SELECT 1 \/ \(balance - balance\) from accounts/), 'a nested statement that fails is logged');
  assert.ok(has(/,WRITE,INSERT,TABLE,public\.history,"?insert into history values \(7, 7\)/), 'in a procedure, before its COMMIT');
  assert.ok(has(/,READ,SELECT,TABLE,public\.history,SELECT id from history where id = 7/), 'in a procedure, after its COMMIT');
  assert.equal(
    lines.filter((m) => /,WRITE,UPDATE,TABLE,public\.accounts,update accounts set balance/.test(m)).length,
    2,
    'credit(1, 5) and credit(2, 1), after the savepoint',
  );
  // Top-level utility statements are the gateway's too: DDL, DO, CALL, VACUUM, transaction control.
  for (const top of [/,DDL,/, /,FUNCTION,DO,/, /,FUNCTION,CALL,/, /VACUUM/]) {
    assert.ok(!has(top), `top-level utility statement logged by pgAudit too: ${top}\n${lines.join('\n')}`);
  }
  // Transaction control is logged by pgAudit (a SET around it would not survive its nest levels)
  // but not kept for a gateway session: the gateway has it.
  assert.ok(has(/,MISC,SAVEPOINT,/), lines.join('\n'));
  // Top level, from the gateway only: none of these reached pgAudit.
  for (const top of [
    /,select count\(\*\) from wide/,
    /insert into accounts values \(1, 100\)/,
    /,select balance from accounts where id = 1/,
    /select balance from accounts where id = \$1/,
    /,select credit\(1, 5\)/,
    /select 1 \/ \(balance - balance\)/,
    /,select id from accounts where id = 2/,
  ]) {
    assert.ok(!has(top), `top-level statement logged by pgAudit too: ${top}\n${lines.join('\n')}`);
  }
  // Joined to the gateway session in the platform's audit log.
  const session = auditEvents<{ type: string; applicationName?: string; connection: { connId: string } }>(t).find(
    (e) => e.type === 'auth.succeeded' && e.applicationName === 'nested-app',
  )!;
  const joined = await until(
    'the nested statements in the audit log',
    async () => {
      const ev = auditEvents<{ type: string; sessionId: string | null; command: string; statement: string }>(t).filter(
        (e) => e.type === 'statement.pgaudit' && e.sessionId === session.connection.connId,
      );
      return ev.some((e) => e.command === 'UPDATE') && ev.some((e) => /insert into history/.test(e.statement)) && ev;
    },
    10_000,
    100,
  );
  assert.ok(joined.every((e) => e.command !== 'DO'));
  assert.ok(
    joined.every((e) => !['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'ROLLBACK TO SAVEPOINT'].includes(e.command)),
    JSON.stringify(joined.map((e) => e.command)),
  );
  // The gateway has the top-level statements.
  const gw = auditEvents<{ type: string; applicationName?: string; text: string }>(t).filter(
    (e) => e.type === 'statement' && e.applicationName === 'nested-app',
  );
  assert.ok(gw.some((e) => e.text === 'select credit(1, 5)'));
  assert.ok(gw.some((e) => e.text === 'select balance from accounts where id = 1'));
});

test("a session the gateway did not open (the platform's own) is logged fully", {
  skip: available ? false : 'needs pgaudit and ext/pgwarden_audit installed',
}, async () => {
  const c = await t.platform.servers.connect(serverId);
  try {
    await c.query("set application_name = 'direct-app'");
    assert.equal((await c.query("select current_setting('pgwarden_audit.gateway_session') v")).rows[0].v, 'off');
    await c.query('select balance from accounts where id = 1');
    await c.query('create table direct_made (x int)');
  } finally {
    await c.end();
  }
  await until(
    'the top-level SELECT of a direct session in the server log',
    async () =>
      pgauditLines('direct-app').some((m) => m.includes(',READ,SELECT,TABLE,public.accounts,select balance from accounts where id = 1')) &&
      pgauditLines('direct-app').some((m) => m.includes(',DDL,CREATE TABLE,TABLE,public.direct_made,')),
    10_000,
    100,
  );
});

// A FunctionCall through libpq's PQfn (node-postgres has no API for the fast-path protocol):
// Python's ctypes over the system libpq, the password in the environment only.
const FASTPATH_CLIENT = String.raw`
import ctypes, sys
lib = ctypes.CDLL('libpq.so.5')
class U(ctypes.Union):
    _fields_ = [('ptr', ctypes.POINTER(ctypes.c_int)), ('integer', ctypes.c_int)]
class Arg(ctypes.Structure):
    _fields_ = [('len', ctypes.c_int), ('isint', ctypes.c_int), ('u', U)]
lib.PQconnectdb.restype = ctypes.c_void_p
lib.PQconnectdb.argtypes = [ctypes.c_char_p]
lib.PQstatus.argtypes = [ctypes.c_void_p]
lib.PQerrorMessage.restype = ctypes.c_char_p
lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
lib.PQfn.restype = ctypes.c_void_p
lib.PQfn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.POINTER(Arg), ctypes.c_int]
lib.PQresultStatus.argtypes = [ctypes.c_void_p]
lib.PQexec.restype = ctypes.c_void_p
lib.PQexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
lib.PQresultErrorMessage.restype = ctypes.c_char_p
lib.PQresultErrorMessage.argtypes = [ctypes.c_void_p]
lib.PQclear.argtypes = [ctypes.c_void_p]
lib.PQfinish.argtypes = [ctypes.c_void_p]
conn = lib.PQconnectdb(sys.argv[1].encode())
if lib.PQstatus(conn) != 0:
    sys.stderr.write(lib.PQerrorMessage(conn).decode())
    sys.exit(2)
if len(sys.argv) > 4:
    first = lib.PQexec(conn, sys.argv[4].encode())
    sys.stderr.write('first statement: %d\n' % lib.PQresultStatus(first))
    lib.PQclear(first)
args = (Arg * 1)()
args[0].len = 4
args[0].isint = 1
args[0].u.integer = int(sys.argv[3])
out = ctypes.c_int(0)
outlen = ctypes.c_int(0)
res = lib.PQfn(conn, int(sys.argv[2]), ctypes.byref(out), ctypes.byref(outlen), 1, args, 1)
if lib.PQresultStatus(res) != 1:
    sys.stderr.write(lib.PQresultErrorMessage(res).decode())
    sys.exit(3)
print(out.value)
lib.PQclear(res)
lib.PQfinish(conn)
`;

/** One FunctionCall of `fnOid(arg)` in a new session, after the simple Query `first` if given. */
function fastPathCall(conn: string, fnOid: number, arg: number, first?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'python3',
      ['-c', FASTPATH_CLIENT, conn, String(fnOid), String(arg), ...(first === undefined ? [] : [first])],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: PASSWORD, PGCONNECT_TIMEOUT: '10' },
        timeout: 30_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, stdout: stdout.trim(), stderr: stderr.trim() }),
    );
  });
}

interface PgAuditEvent {
  type: string;
  sessionId: string | null;
  class: string;
  command: string;
  objectName: string;
  statement: string;
}

const sessionOf = (app: string): string | undefined =>
  auditEvents<{ type: string; applicationName?: string; connection: { connId: string } }>(t).find(
    (e) => e.type === 'auth.succeeded' && e.applicationName === app,
  )?.connection.connId;

const pgauditOf = (session: string | undefined): PgAuditEvent[] =>
  session === undefined ? [] : auditEvents<PgAuditEvent>(t).filter((e) => e.type === 'statement.pgaudit' && e.sessionId === session);

test("statements outside the client's own ones are logged: a fast-path call, deferred triggers at COMMIT, input at Bind, CREATE TABLE AS, EXPLAIN ANALYZE", {
  skip: available ? false : 'needs pgaudit and ext/pgwarden_audit installed',
}, async () => {
  const c = await ownerClient('escape-app');
  await c.query('create table v4_log (source text, val int)');
  await c.query(`create function v4_fast(n int) returns int language plpgsql as $$
    declare r record;
    begin
      insert into v4_log values ('fastpath', n);
      for r in select val from v4_log where source = 'fastpath' loop null; end loop;
      return n * 2;
    end $$`);
  await c.query(`create function v4_deferred() returns trigger language plpgsql as $$
    begin insert into v4_log values ('deferred', new.id); return null; end $$`);
  await c.query('create table v4_items (id int)');
  await c.query(
    'create constraint trigger v4_items_deferred after insert on v4_items deferrable initially deferred for each row execute function v4_deferred()',
  );
  await c.query(`create function v4_bind_check(v int) returns boolean language plpgsql as $$
    begin insert into v4_log values ('bind', v); return true; end $$`);
  await c.query('create domain v4_checked as int check (v4_bind_check(value))');
  await c.query(`create function v4_ctas(n int) returns int language plpgsql as $$
    begin insert into v4_log values ('ctas', n); return n; end $$`);
  await c.query(`create function v4_explain(n int) returns int language plpgsql as $$
    begin insert into v4_log values ('explain', n); return n; end $$`);
  const fnOid = Number((await c.query("select 'v4_fast'::regproc::oid as oid")).rows[0].oid);

  // The fast-path protocol: a FunctionCall message, no query text at all.
  const fp = await fastPathCall(conninfo(t, { user: `owner@${SERVER}`, sslmode: 'require', application_name: 'escape-fastpath' }), fnOid, 21);
  assert.equal(fp.code, 0, fp.stderr);
  assert.equal(fp.stdout, '42');
  // The same after a procedure that committed and then failed: its abort went back to the
  // pgaudit.log the COMMIT made durable ('none', set around the CALL), and the fast-path call
  // must not run with it.
  await c.query(`create procedure v4_commit_then_fail() language plpgsql as $$
    begin insert into v4_items values (0); commit; perform 1 / 0; end $$`);
  const fp2 = await fastPathCall(
    conninfo(t, { user: `owner@${SERVER}`, sslmode: 'require', application_name: 'escape-fastpath-2' }),
    fnOid,
    8,
    'call v4_commit_then_fail()',
  );
  assert.equal(fp2.code, 0, fp2.stderr);
  assert.equal(fp2.stdout, '16');
  assert.match(fp2.stderr, /first statement: 7/); // PGRES_FATAL_ERROR: division by zero
  // A deferred constraint trigger fires at COMMIT, outside any statement: implicit and explicit.
  await c.query('insert into v4_items values (1)');
  await c.query('begin');
  await c.query('insert into v4_items values (2)');
  await c.query('commit');
  // A domain's CHECK runs while Bind converts the parameter, before any statement starts.
  assert.equal((await c.query({ text: 'select $1::v4_checked as v', values: [3] })).rows[0].v, 3);
  // And while a literal is parsed, before the statement's portal exists.
  assert.equal((await c.query("select '9'::v4_checked as v")).rows[0].v, 9);
  await c.query('create table v4_made as select v4_ctas(4) as x');
  await c.query('explain analyze select v4_explain(5)');
  assert.deepEqual(
    (await c.query('select source from v4_log order by source')).rows.map((r: { source: string }) => r.source),
    ['bind', 'bind', 'ctas', 'deferred', 'deferred', 'deferred', 'explain', 'fastpath', 'fastpath'],
  );
  await c.end();

  const insertOf = (source: string) => new RegExp(`^insert into v4_log values \\('${source}', (n|new\\.id|v)\\)$`);
  // Batched durability: the log has the sessions' logins shortly, not necessarily by now.
  const [session, fastSession, fastSession2] = await until(
    'the three sessions in the audit log',
    async () => {
      const ids = [sessionOf('escape-app'), sessionOf('escape-fastpath'), sessionOf('escape-fastpath-2')];
      return ids.every((id) => id !== undefined) && (ids as string[]);
    },
    15_000,
    100,
  );
  const events = await until(
    'the nested writes in the audit log',
    async () => {
      const ev = [...pgauditOf(session), ...pgauditOf(fastSession), ...pgauditOf(fastSession2)];
      return ev.some((e) => insertOf('explain').test(e.statement)) && ev.filter((e) => insertOf('deferred').test(e.statement)).length >= 2 && ev;
    },
    15_000,
    100,
  ).catch((err: Error) =>
    assert.fail(`${err.message}:\n${JSON.stringify([...pgauditOf(session), ...pgauditOf(fastSession), ...pgauditOf(fastSession2)], null, 1)}`),
  );
  const summary = JSON.stringify(
    events.map((e) => `${e.class},${e.command},${e.objectName},${e.statement}`),
    null,
    1,
  );
  const writes = (source: string, ev: PgAuditEvent[]) =>
    ev.filter((e) => e.class === 'WRITE' && e.command === 'INSERT' && e.objectName === 'public.v4_log' && insertOf(source).test(e.statement)).length;
  const fastEvents = pgauditOf(fastSession);
  assert.equal(writes('fastpath', fastEvents), 1, `the fast-path call's INSERT\n${summary}`);
  assert.ok(
    fastEvents.some((e) => e.class === 'READ' && e.objectName === 'public.v4_log' && /select val from v4_log where source = 'fastpath'/.test(e.statement)),
    `the cursor it opened\n${summary}`,
  );
  assert.equal(writes('fastpath', pgauditOf(fastSession2)), 1, `the fast-path call after a procedure that committed and failed\n${summary}`);
  const own = pgauditOf(session);
  assert.equal(writes('deferred', own), 2, `the deferred trigger at implicit and explicit COMMIT\n${summary}`);
  assert.equal(writes('bind', own), 2, `the domain check at Bind and at parse\n${summary}`);
  assert.equal(writes('ctas', own), 1, `inside CREATE TABLE AS\n${summary}`);
  assert.equal(writes('explain', own), 1, `inside EXPLAIN ANALYZE\n${summary}`);
  // The client's own statements are the gateway's: not logged a second time by pgAudit.
  for (const top of [
    /^insert into v4_items values \(\d\)$/,
    /^select \$1::v4_checked as v$/,
    /^select '9'::v4_checked as v$/,
    /^select source from v4_log order by source$/,
  ]) {
    assert.ok(!own.some((e) => top.test(e.statement)), `top-level statement logged by pgAudit too: ${top}\n${summary}`);
  }
  assert.ok(!own.some((e) => e.class === 'DDL'), `top-level DDL logged by pgAudit too\n${summary}`);
  const gw = auditEvents<{ type: string; applicationName?: string; text: string }>(t).filter(
    (e) => e.type === 'statement' && e.applicationName === 'escape-app',
  );
  assert.ok(gw.some((e) => e.text === 'insert into v4_items values (1)'));
  assert.ok(gw.some((e) => e.text === 'select $1::v4_checked as v'));
});
