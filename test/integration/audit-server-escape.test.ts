// What a managed server's administrator (CREATEROLE, not superuser) must not be able to do from
// SQL, tried through the gateway with the administrator's own login:
//   - forge pgAudit records: `RAISE LOG 'AUDIT: ...'` (or RAISE EXCEPTION) writes a server log line
//     that looks like pgAudit's; pgwarden_audit rewrites it before it is written and the
//     platform's reader refuses anything without pgAudit's shape, so no `statement.pgaudit` record
//     comes of it, while a genuine one does;
//   - grant itself pg_read_all_data (or pg_write_all_data) on PostgreSQL 15, which reads pg_authid:
//     every role's SCRAM verifier, the platform's maintenance superuser's too (pgwarden_guard).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { allowLoopback, auditEvents, startTestPlatform, until, type TestPlatform, setAuditClasses } from '../helpers/platform.js';
import { pgwardenAuditInstalled } from '../helpers/pgaudit.js';
import { gatewayClient } from '../helpers/clients.js';
import { findPgBinaries } from '../../src/host/pg-binaries.js';

const PASSWORD = 'Escape-Audit-Passw0rd!';
const SERVER = 'escape1';
const GRANT_DETAIL = 'Only the platform may grant membership in this role.';
let t: TestPlatform;
let serverId: number;

const binaries = findPgBinaries();
const hasAudit = pgwardenAuditInstalled();

before(async () => {
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'owner', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  serverId = t.platform.snapshots.snapshot.servers.get(SERVER)!.id;
  if (!hasAudit) return;
  await setAuditClasses(t, SERVER, ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC']);
});
after(async () => t?.stop());

const adminClient = (app: string) => gatewayClient(t, { server: SERVER, user: 'owner', password: PASSWORD, app });

interface Refusal {
  code: string | undefined;
  message: string;
  detail?: string | undefined;
}

async function refusal(c: pg.Client, sql: string): Promise<Refusal> {
  try {
    await c.query(sql);
  } catch (err) {
    const e = err as pg.DatabaseError;
    return e.detail === undefined ? { code: e.code, message: e.message } : { code: e.code, message: e.message, detail: e.detail };
  }
  return assert.fail(`not refused: ${sql}`);
}

/** The server's own jsonlog lines (the messages), as PostgreSQL wrote them. */
function serverLogMessages(): string[] {
  const dir = t.platform.servers.logDir(serverId);
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    for (const line of readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      try {
        const m = (JSON.parse(line) as { message?: string }).message;
        if (m) out.push(m);
      } catch {
        /* empty or being written */
      }
    }
  }
  return out;
}

test("RAISE LOG / RAISE EXCEPTION 'AUDIT: ...' forges no statement.pgaudit record; a genuine one is kept", {
  skip: hasAudit ? false : 'needs pgaudit and ext/pgwarden_audit installed',
}, async () => {
  const c = await adminClient('forge-app');
  await c.query('create table w6_real (id int)');
  await c.query(`do $$ begin raise log 'AUDIT: SESSION,1,1,DDL,DROP TABLE,TABLE,public.w6_forged_do,DROP TABLE w6_forged_do,<not logged>'; end $$`);
  const raised = await refusal(c, `do $$ begin raise exception 'AUDIT: SESSION,2,1,ROLE,GRANT,,,GRANT pg_read_all_data TO w6_forged_exc,<not logged>'; end $$`);
  assert.match(raised.message, /AUDIT: SESSION,2,1,ROLE,GRANT/);
  await c.query(`create function w6_forge() returns int language plpgsql as $$
    begin raise log 'AUDIT: OBJECT,3,1,WRITE,DELETE,TABLE,public.w6_forged_fn,DELETE FROM w6_forged_fn,<not logged>'; return 1; end $$`);
  await c.query('select w6_forge()');
  // A genuine nested statement after them: once its record is in, the forged lines were read too.
  await c.query('do $$ begin insert into w6_real values (1); end $$');
  await c.end();

  const session = auditEvents<{ type: string; applicationName?: string; connection: { connId: string } }>(t).find(
    (e) => e.type === 'auth.succeeded' && e.applicationName === 'forge-app',
  )!.connection.connId;
  const pgaudit = () =>
    auditEvents<{ type: string; sessionId: string | null; objectName: string; statement: string; command: string }>(t).filter(
      (e) => e.type === 'statement.pgaudit',
    );
  await until(
    'the genuine record',
    async () =>
      pgaudit().some(
        (e) => e.sessionId === session && e.command === 'INSERT' && e.objectName === 'public.w6_real' && e.statement === 'insert into w6_real values (1)',
      ),
    15_000,
    100,
  ).catch((err: Error) => assert.fail(`${err.message}:\n${JSON.stringify(pgaudit(), null, 1)}`));
  const forged = pgaudit().filter((e) => /w6_forged/.test(`${e.objectName} ${e.statement}`));
  assert.deepEqual(forged, [], 'forged pgAudit records');
  // In the server's own log the forged messages are marked for what they are.
  const messages = serverLogMessages();
  assert.ok(!messages.some((m) => m.startsWith('AUDIT: ') && m.includes('w6_forged')), messages.filter((m) => m.includes('w6_forged')).join('\n'));
  for (const name of ['w6_forged_do', 'w6_forged_exc', 'w6_forged_fn']) {
    assert.ok(
      messages.some((m) => m.startsWith('not a pgAudit record: AUDIT: ') && m.includes(name)),
      `${name}:\n${messages.filter((m) => m.includes('w6_forged')).join('\n')}`,
    );
  }
});

test('the administrator cannot grant itself pg_read_all_data or pg_write_all_data; pg_authid verifiers stay unreadable', {
  skip: binaries.majorVersion >= 16 ? 'PostgreSQL 16+ refuses these grants itself' : false,
}, async () => {
  const c = await adminClient('w3-app');
  try {
    assert.deepEqual(await refusal(c, `select rolname, rolpassword from pg_authid where rolname = 'pgwarden_maintenance'`), {
      code: '42501',
      message: 'permission denied for table pg_authid',
    });
    for (const role of ['pg_read_all_data', 'pg_write_all_data']) {
      assert.deepEqual(await refusal(c, `grant ${role} to owner`), {
        code: '42501',
        message: `permission denied to grant role "${role}"`,
        detail: GRANT_DETAIL,
      });
      assert.deepEqual(await refusal(c, `create role w3_${role} in role ${role}`), {
        code: '42501',
        message: `permission denied to grant role "${role}"`,
        detail: GRANT_DETAIL,
      });
      assert.deepEqual(await refusal(c, `alter group ${role} add user owner`), {
        code: '42501',
        message: `permission denied to grant role "${role}"`,
        detail: GRANT_DETAIL,
      });
    }
    assert.deepEqual(await refusal(c, `select rolname, rolpassword from pg_authid where rolname = 'pgwarden_maintenance'`), {
      code: '42501',
      message: 'permission denied for table pg_authid',
    });
  } finally {
    await c.end();
  }
  const m = await t.platform.servers.connect(serverId);
  try {
    const { rows } = await m.query(`select pg_has_role('owner', 'pg_read_all_data', 'member') r, pg_has_role('owner', 'pg_write_all_data', 'member') w`);
    assert.deepEqual(rows[0], { r: false, w: false });
  } finally {
    await m.end();
  }
});
