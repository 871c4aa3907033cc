// pgAudit on a managed server logs, in the sessions the gateway opens, only the statements the
// gateway cannot see (ext/pgwarden_audit): those inside functions, DO blocks and triggers. Checked
// in the server's own jsonlog files, not only in what the platform keeps, and after errors and
// exception blocks. Sessions the gateway did not open (the platform's own) are logged fully.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { allowLoopback, auditEvents, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { pgauditAvailable } from '../../src/engine/server-libraries.js';

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
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
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

const available = (() => {
  try {
    return existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => pgauditAvailable({ libDir: `/usr/lib/postgresql/${v}/lib` } as never) && existsSync(`/usr/lib/postgresql/${v}/lib/pgwarden_audit.so`));
  } catch {
    return false;
  }
})();

before(async () => {
  if (!available) return;
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'owner', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  serverId = t.platform.snapshots.snapshot.servers.get(SERVER)!.id;
  const u = await t.cli(['server', 'audit', 'update', '--server', SERVER, '--classes', 'READ,WRITE,FUNCTION,ROLE,DDL,MISC']);
  assert.equal(u.code, 0, u.stderr);
  await until('the audit settings at the server', async () => {
    const c = await t.platform.servers.connect(serverId);
    try {
      return (await c.query("select current_setting('pgaudit.log') v")).rows[0].v === 'read,write,function,role,ddl,misc';
    } finally {
      await c.end();
    }
  }, 10_000, 100);
});
after(async () => t?.stop());

const gatewayClient = async (app: string, options?: string) => {
  const c = new pg.Client({ host: '127.0.0.1', port: t.platform.gateway.port, user: `owner@${SERVER}`, password: PASSWORD, database: 'postgres', application_name: app, options, ssl: { rejectUnauthorized: false } });
  await c.connect();
  return c;
};

test('gateway sessions: top-level SELECT and DML are not logged twice; statements in functions, DO blocks and triggers are, joined to the session', { skip: available ? false : 'needs pgaudit and ext/pgwarden_audit installed' }, async () => {
  const c = await gatewayClient('nested-app');
  // A client cannot switch the marker off: the gateway's own startup parameter comes last.
  const marker = await c.query("select current_setting('pgwarden_audit.gateway_session') v");
  assert.equal(marker.rows[0].v, 'on');
  const sly = await gatewayClient('nested-sly', '-c pgwarden_audit.gateway_session=off');
  assert.equal((await sly.query("select current_setting('pgwarden_audit.gateway_session') v")).rows[0].v, 'on');
  await assert.rejects(sly.query("set pgwarden_audit.gateway_session = off"), /cannot be set after connection start/);
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

  const lines = await until('the nested statements in the server log', async () => {
    const l = pgauditLines('nested-app');
    return l.filter((m) => m.includes(',WRITE,UPDATE,TABLE,public.accounts,')).length >= 2 && l;
  }, 10_000, 100).catch((err: Error) => assert.fail(`${err.message}:\n${pgauditLines('nested-app').join('\n')}`));
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
  assert.equal(lines.filter((m) => /,WRITE,UPDATE,TABLE,public\.accounts,update accounts set balance/.test(m)).length, 2, 'credit(1, 5) and credit(2, 1), after the savepoint');
  // Top-level utility statements are the gateway's too: DDL, DO, CALL, VACUUM, transaction control.
  for (const top of [/,DDL,/, /,FUNCTION,DO,/, /,FUNCTION,CALL,/, /VACUUM/]) {
    assert.ok(!has(top), `top-level utility statement logged by pgAudit too: ${top}\n${lines.join('\n')}`);
  }
  // Transaction control is logged by pgAudit (a SET around it would not survive its nest levels)
  // but not kept for a gateway session: the gateway has it.
  assert.ok(has(/,MISC,SAVEPOINT,/), lines.join('\n'));
  // Top level, from the gateway only: none of these reached pgAudit.
  for (const top of [/,select count\(\*\) from wide/, /insert into accounts values \(1, 100\)/, /,select balance from accounts where id = 1/, /select balance from accounts where id = \$1/, /,select credit\(1, 5\)/, /select 1 \/ \(balance - balance\)/, /,select id from accounts where id = 2/]) {
    assert.ok(!has(top), `top-level statement logged by pgAudit too: ${top}\n${lines.join('\n')}`);
  }
  // Joined to the gateway session in the platform's audit log.
  const session = auditEvents<{ type: string; applicationName?: string; connection: { connId: string } }>(t)
    .find((e) => e.type === 'auth.succeeded' && e.applicationName === 'nested-app')!;
  const joined = await until('the nested statements in the audit log', async () => {
    const ev = auditEvents<{ type: string; sessionId: string | null; command: string; statement: string }>(t)
      .filter((e) => e.type === 'statement.pgaudit' && e.sessionId === session.connection.connId);
    return ev.some((e) => e.command === 'UPDATE') && ev.some((e) => /insert into history/.test(e.statement)) && ev;
  }, 10_000, 100);
  assert.ok(joined.every((e) => e.command !== 'DO'));
  assert.ok(joined.every((e) => !['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'ROLLBACK TO SAVEPOINT'].includes(e.command)), JSON.stringify(joined.map((e) => e.command)));
  // The gateway has the top-level statements.
  const gw = auditEvents<{ type: string; applicationName?: string; text: string }>(t).filter((e) => e.type === 'statement' && e.applicationName === 'nested-app');
  assert.ok(gw.some((e) => e.text === 'select credit(1, 5)'));
  assert.ok(gw.some((e) => e.text === 'select balance from accounts where id = 1'));
});

test('a session the gateway did not open (the platform\'s own) is logged fully', { skip: available ? false : 'needs pgaudit and ext/pgwarden_audit installed' }, async () => {
  const c = await t.platform.servers.connect(serverId);
  try {
    await c.query("set application_name = 'direct-app'");
    assert.equal((await c.query("select current_setting('pgwarden_audit.gateway_session') v")).rows[0].v, 'off');
    await c.query('select balance from accounts where id = 1');
    await c.query('create table direct_made (x int)');
  } finally {
    await c.end();
  }
  await until('the top-level SELECT of a direct session in the server log', async () =>
    pgauditLines('direct-app').some((m) => m.includes(',READ,SELECT,TABLE,public.accounts,select balance from accounts where id = 1')) &&
    pgauditLines('direct-app').some((m) => m.includes(',DDL,CREATE TABLE,TABLE,public.direct_made,')), 10_000, 100);
});
