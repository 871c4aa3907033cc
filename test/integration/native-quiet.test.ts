// Quiet statements on the native relay, through the real gateway and PostgreSQL: with the default
// audit classes (ROLE, DDL) and no SQL watch, a simple Query the audit records nothing of is
// classified once per shape; from then on the addon relays that shape and its answer without
// handing JavaScript a byte of it. What the audit records is exactly what it recorded before:
// statements of audited classes, texts it cannot key, and everything once the classes change.
// Skipped when the addon is not built.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import postgres from 'postgres';
import { allowLoopback, auditEvents, setAuditClasses, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { gatewayClient, gatewayPort } from '../helpers/clients.js';
import { loadRelayAddon } from '../../src/gateway/native/addon.js';
import { nativeRelayCounters } from '../../src/gateway/native/session-relay.js';
import { framingCounters } from '../../src/pgwire/observer/index.js';
import { ServersRepo } from '../../src/catalog/servers-repo.js';

const loaded = loadRelayAddon();
const skip = loaded.addon === null ? `native relay addon not available: ${loaded.reason}` : false;

let t: TestPlatform;
const PASSWORD = 'Qu1et-Statements-Passw0rd!';
const SERVER = 'nq1';
const POOLED = 'nq2';
const WATCHED = 'nq3';
/** Threat protection on with the default learning period (7 days): it runs through this file. */
const LEARNING = 'nq4';
/** Every class audited. */
const SUMMARIZED = 'nq5';

before(
  async () => {
    if (skip) return;
    t = await startTestPlatform({ relay: 'native' });
    for (const name of [SERVER, POOLED, WATCHED, LEARNING, SUMMARIZED]) {
      const r = await t.cli(['server', 'create', name, '--admin-user', 'alice', '--admin-password', PASSWORD]);
      assert.equal(r.code, 0, r.stderr);
      await allowLoopback(t, name);
    }
    // Threat protection on, no learning period: the SQL watch judges every shape by its rules.
    const p = await t.cli([
      'server',
      'threat-protection',
      'update',
      '--server',
      WATCHED,
      '--state',
      'Enabled',
      '--learning-period-seconds',
      '0',
      '--auto-protection',
      'Disabled',
    ]);
    assert.equal(p.code, 0, p.stderr);
    const l = await t.cli(['server', 'threat-protection', 'update', '--server', LEARNING, '--state', 'Enabled', '--auto-protection', 'Disabled']);
    assert.equal(l.code, 0, l.stderr);
    await until(
      'threat protection in force',
      async () => t.platform.threat.policy(WATCHED).state === 'Enabled' && t.platform.threat.policy(LEARNING).state === 'Enabled',
      10_000,
      50,
    );
    await new ServersRepo(t.platform.db).update(POOLED, { poolMode: 'session', poolSize: 1 });
    await t.platform.snapshots.requestReload();
    await until('session pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(POOLED)?.poolMode === 'session', 10_000, 50);
  },
  { timeout: 180_000 },
);
after(async () => {
  await t?.stop();
});

const client = (app: string, server = SERVER) => gatewayClient(t, { server, user: 'alice', password: PASSWORD, app });

type Statement = {
  type: string;
  applicationName?: string;
  commandTag: string;
  outcome: string;
  text: string;
  class?: string;
  classes?: string[];
  objects?: unknown[];
  rows?: number;
  sqlstate?: string;
  errorMessage?: string;
  protocol?: string;
  durationMs?: number;
};
const statements = (app: string) => auditEvents<Statement>(t).filter((e) => e.type === 'statement' && e.applicationName === app);

/** Waits until the addon's events already on their way have been handled: the count of framed
 * messages holds still for 150 ms (the events come through the addon's threadsafe callback, which
 * under load can run after the client already has its answer). */
async function settled(): Promise<number> {
  let last = framingCounters.messages;
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 150));
    if (framingCounters.messages === last) break;
    last = framingCounters.messages;
  }
  return last;
}

/** Messages JavaScript framed for what `f` ran (every observer framer of this process). */
async function framed(f: () => Promise<unknown>): Promise<number> {
  const before = await settled();
  await f();
  return (await settled()) - before;
}

test('a statement the audit records nothing of is classified once; then it and its answer stay in the addon', { skip }, async () => {
  const c = await client('nq-select');
  try {
    // node-postgres sends a Query without parameters as a simple Query.
    const first = await framed(async () => assert.equal((await c.query('SELECT 4711 + 1 AS n')).rows[0].n, 4712));
    assert.ok(first >= 5, `the first of its shape is observed (Q, T, D, C, Z): ${first}`);
    // The key record goes to JavaScript with the first; its answer (quiet) reaches the addon
    // before the next statement, which is the first to be relayed unobserved.
    for (const [n, want] of [
      [123456, 123457],
      [999999, 1000000],
    ]) {
      const count = await framed(async () => assert.equal((await c.query(`SELECT ${n} + 1 AS n`)).rows[0].n, want));
      assert.equal(count, 0, `SELECT ${n} + 1: nothing observed`);
    }
    // Errors and row sets pass as they would: the client sees what PostgreSQL said.
    await c.query('SELECT 1/0 AS z').catch(() => undefined);
    await assert.rejects(c.query('SELECT 2/0 AS z'), (e: { code?: string }) => e.code === '22012');
    assert.equal((await c.query('SELECT 3/1 AS z')).rows[0].z, 3);
    const rows = await c.query('SELECT g FROM generate_series(1, 500) g');
    assert.equal(rows.rowCount, 500);
  } finally {
    await c.end();
  }
});

test('audited statements around quiet ones are recorded exactly, with the right outcome', { skip }, async () => {
  const app = 'nq-ddl';
  const c = await client(app);
  try {
    await c.query('SELECT 100 AS a');
    await c.query('SELECT 101 AS a');
    await c.query('CREATE TABLE nq_t (a int)');
    await c.query('SELECT 102 AS a');
    // A string with a statement the audit records: observed, the DDL recorded.
    await c.query('SELECT 103 AS a; DROP TABLE nq_t');
    // A text the key cannot vouch for (a comment) is always observed; a refused parse is recorded.
    await c.query('SELECT 104 AS a -- not keyed');
    await assert.rejects(c.query("SELECT 'x"), (e: { code?: string }) => e.code === '42601');
    await c.query('SELECT 105 AS a');
    await c.query('CREATE ROLE nq_role');
    await c.query('DROP ROLE nq_role');
  } finally {
    await c.end();
  }
  const got = await until('the statements in the audit log', async () => {
    const s = statements(app);
    return s.length >= 5 && s;
  });
  assert.deepEqual(
    got.map((s) => [s.commandTag, s.outcome]),
    [
      ['CREATE TABLE', 'success'],
      ['DROP TABLE', 'success'],
      ['???', 'failure'],
      ['CREATE ROLE', 'success'],
      ['DROP ROLE', 'success'],
    ],
  );
});

test('extended protocol: node-postgres parameterized statements (unnamed groups) go unobserved once known', { skip }, async () => {
  const c = await client('nq-params');
  try {
    const first = await framed(async () => assert.equal((await c.query('SELECT $1::int + 1 AS n', [41])).rows[0].n, 42));
    assert.ok(first >= 8, `the first group of its shape is observed: ${first}`);
    for (const v of [1, 2, 3]) {
      const count = await framed(async () => assert.equal((await c.query('SELECT $1::int + 1 AS n', [v])).rows[0].n, v + 1));
      assert.equal(count, 0, `SELECT $1 + 1 with ${v}: nothing observed`);
    }
    // A failing one: the client gets PostgreSQL's error, the session goes on.
    await assert.rejects(c.query('SELECT 10 / $1::int AS z', [0]), (e: { code?: string }) => e.code === '22012');
    await assert.rejects(c.query('SELECT 10 / $1::int AS z', [0]), (e: { code?: string }) => e.code === '22012');
    assert.equal((await c.query('SELECT 10 / $1::int AS z', [5])).rows[0].z, 2);
    assert.equal((await c.query('SELECT $1::int + 1 AS n', [7])).rows[0].n, 8);
  } finally {
    await c.end();
  }
});

test('extended protocol: postgres.js named statements (Bind/Execute groups) go unobserved once known', { skip }, async () => {
  const sql = postgres({
    host: '127.0.0.1',
    port: gatewayPort(t),
    username: `alice@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
    max: 1,
    connection: { application_name: 'nq-postgresjs' },
  });
  try {
    assert.equal((await sql`SELECT ${1}::int * 3 AS n`)[0]!.n, 3);
    assert.equal((await sql`SELECT ${2}::int * 3 AS n`)[0]!.n, 6);
    for (const v of [3, 4]) {
      const count = await framed(async () => assert.equal((await sql`SELECT ${v}::int * 3 AS n`)[0]!.n, v * 3));
      assert.equal(count, 0, `named statement with ${v}: nothing observed`);
    }
    // A DDL through the same client is recorded (postgres.js sends it extended too).
    await sql`CREATE TABLE nq_pjs (a int)`;
    await sql`DROP TABLE nq_pjs`;
  } finally {
    await sql.end();
  }
  const got = await until('the DDL records', async () => {
    const s = statements('nq-postgresjs');
    return s.length >= 2 && s;
  });
  assert.deepEqual(
    got.map((s) => [s.commandTag, s.outcome]),
    [
      ['CREATE TABLE', 'success'],
      ['DROP TABLE', 'success'],
    ],
  );
});

test('--quiet-statements off: every statement is observed again (sessions started after the change)', { skip }, async () => {
  const context = t.platform.gateway.context;
  context.quietStatements = false;
  try {
    const c = await client('nq-off');
    try {
      await c.query('SELECT 4711 + 1 AS n');
      for (const n of [123456, 999999]) {
        const count = await framed(() => c.query(`SELECT ${n} + 1 AS n`));
        assert.ok(count >= 5, `SELECT ${n} + 1 observed: ${count} messages`);
      }
    } finally {
      await c.end();
    }
  } finally {
    context.quietStatements = true;
  }
});

test('changed audit classes take effect for the next session: its SELECTs are recorded again', { skip }, async () => {
  const c0 = await client('nq-before');
  await c0.query('SELECT 200 AS a');
  await c0.query('SELECT 201 AS a');
  await c0.end();
  await setAuditClasses(t, SERVER, ['READ', 'DDL']);
  const app = 'nq-after';
  const c = await client(app);
  try {
    for (const n of [202, 203, 204]) await c.query(`SELECT ${n} AS a`);
    for (const n of [1, 2]) await c.query('SELECT $1::int AS p', [n]);
  } finally {
    await c.end();
  }
  const got = await until('the SELECTs in the audit log', async () => {
    const s = statements(app).filter((e) => e.commandTag === 'SELECT');
    return s.length >= 5 && s;
  });
  assert.deepEqual(
    got.map((s) => s.text),
    ['SELECT 202 AS a', 'SELECT 203 AS a', 'SELECT 204 AS a', 'SELECT $1::int AS p', 'SELECT $1::int AS p'],
  );
  assert.deepEqual(statements('nq-before'), []);
  await setAuditClasses(t, SERVER, ['ROLE', 'DDL']);
});

test('session pooling: quiet statements leave the pooled connection reusable and reset', { skip }, async () => {
  let pid = 0;
  for (const app of ['nq-pool-1', 'nq-pool-2']) {
    const c: pg.Client = await client(app, POOLED);
    try {
      for (const n of [300, 301, 302]) await c.query(`SELECT ${n} AS a`);
      const r = await c.query('SELECT pg_backend_pid() AS pid, current_setting($1) AS s', ['application_name']);
      if (pid === 0) {
        pid = r.rows[0].pid;
        await c.query("SET search_path TO 'nq_schema'");
      } else {
        assert.equal(r.rows[0].pid, pid, 'the same server connection, lent again');
        assert.equal((await c.query('SHOW search_path')).rows[0].search_path, '"$user", public', 'reset between clients');
      }
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
});

type Alert = { type: string; evidence: { applicationName?: string; statement?: string } };
const alerts = async (type: string, server = WATCHED) => (await t.api<{ value: Alert[] }>('GET', `/servers/${server}/alerts?type=${type}`)).value;

test('SQL watch on: a judged clean shape goes uninspected, an injection still raises its alert', { skip }, async () => {
  const app = 'nq-watch';
  const c = await client(app, WATCHED);
  try {
    await c.query('CREATE TABLE nq_items (id int, name text)');
    await c.query("SELECT id FROM nq_items WHERE name = 'lamp'");
    const count = await framed(() => c.query("SELECT id FROM nq_items WHERE name = 'desk'"));
    assert.equal(count, 0, 'a clean shape judged once is not observed again');
    // Another shape (the quote closed early): observed, judged, alerted.
    await c.query("SELECT id FROM nq_items WHERE name = '' AND substr(current_user,1,1)='a'");
  } finally {
    await c.end();
  }
  const a = await until('the SqlInjection alert', async () => (await alerts('SqlInjection')).find((x) => x.evidence.applicationName === app), 10_000, 50);
  assert.match(a.evidence.statement ?? '', /substr\(current_user/);
});

test('SQL watch on: syntax errors raised by a quiet statement are still counted (its failure is observed)', { skip }, async () => {
  const app = 'nq-dynamic';
  const c = await client(app, WATCHED);
  try {
    await c.query('CREATE FUNCTION nq_dyn(q text) RETURNS int LANGUAGE plpgsql AS $f$ BEGIN EXECUTE q; RETURN 1; END $f$');
    assert.equal((await c.query("SELECT nq_dyn('SELECT 1')")).rows[0].nq_dyn, 1);
    assert.equal(await framed(() => c.query("SELECT nq_dyn('SELECT 2')")), 0, 'quiet');
    // The same shape, each failing with 42601 inside the function: a burst of syntax errors.
    for (let i = 0; i < 12; i++) await assert.rejects(c.query(`SELECT nq_dyn('SELEC ${i}')`), (e: { code?: string }) => e.code === '42601');
    assert.equal((await c.query("SELECT nq_dyn('SELECT 3')")).rows[0].nq_dyn, 1, 'the session goes on');
  } finally {
    await c.end();
  }
  await until(
    'the SqlInjectionVulnerability alert',
    async () => (await alerts('SqlInjectionVulnerability')).find((x) => x.evidence.applicationName === app),
    10_000,
    50,
  );
});

test('SQL watch in its learning period: a shape once learned goes uninspected, a new one is observed and learned, an injection still alerts', {
  skip,
}, async () => {
  assert.ok(t.platform.threat.policy(LEARNING).detectors.learningPeriodSeconds >= 86_400, 'the default learning period');
  const app = 'nq-learning';
  const c = await client(app, LEARNING);
  try {
    await c.query('CREATE TABLE nq_orders (id int, customer text)');
    const first = await framed(() => c.query("SELECT id FROM nq_orders WHERE customer = 'ann'"));
    assert.ok(first >= 5, `the first of its shape is observed and learned: ${first}`);
    assert.equal(await framed(() => c.query("SELECT id FROM nq_orders WHERE customer = 'bob'")), 0, 'a learned shape is not observed again');
    // A new shape of the same application: observed (learned now), then quiet too.
    assert.ok((await framed(() => c.query('SELECT customer FROM nq_orders WHERE id > 1000'))) >= 5, 'a new shape is observed');
    assert.equal(await framed(() => c.query('SELECT customer FROM nq_orders WHERE id > 9999')), 0, 'and learned');
    await c.query("SELECT id FROM nq_orders WHERE customer = '' OR '1'='1'");
  } finally {
    await c.end();
  }
  const a = await until(
    'the SqlInjection alert',
    async () => (await alerts('SqlInjection', LEARNING)).find((x) => x.evidence.applicationName === app),
    10_000,
    50,
  );
  assert.match(a.evidence.statement ?? '', /customer = \S+ OR /, 'the injected statement');
});

test('every class audited: a known shape is summarized (no bytes to JavaScript), its record the same as observed', { skip }, async () => {
  await setAuditClasses(t, SUMMARIZED, ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC']);
  const app = 'nq-summarized';
  const before = { ...nativeRelayCounters };
  const c = await client(app, SUMMARIZED);
  try {
    await c.query('CREATE TABLE nq_s (id int, v int)');
    await c.query('INSERT INTO nq_s SELECT g, g FROM generate_series(1, 300) g');
    assert.equal((await c.query('SELECT v FROM nq_s WHERE id = 100')).rows[0].v, 100);
    for (const id of [123, 234]) {
      const count = await framed(async () => assert.equal((await c.query(`SELECT v FROM nq_s WHERE id = ${id}`)).rows[0].v, id));
      assert.equal(count, 0, `id = ${id}: nothing observed`);
    }
    assert.equal((await c.query('UPDATE nq_s SET v = v + 1 WHERE id > 100')).rowCount, 200);
    // Once JavaScript has the first of its shape (observed up to batch.rs DELAY later) and has
    // made the shape known to the relay: the next of it is summarized.
    await settled();
    assert.equal((await c.query('UPDATE nq_s SET v = v + 1 WHERE id > 250')).rowCount, 50);
    await assert.rejects(c.query('SELECT v / 0 FROM nq_s WHERE id = 100'), (e: { code?: string }) => e.code === '22012');
    // Summarized, and failed: observed from its error on, and recorded as a failure.
    await assert.rejects(c.query('SELECT v / 0 FROM nq_s WHERE id = 200'), (e: { code?: string }) => e.code === '22012');
    // A string literal: never summarized (a secret could be in one).
    await c.query("SELECT v FROM nq_s WHERE id = 100 AND 'a' = 'a'");
    await c.query("SELECT v FROM nq_s WHERE id = 101 AND 'b' = 'b'");
  } finally {
    await c.end();
  }
  const got = await until('the statements in the audit log', async () => {
    const s = statements(app);
    return s.length >= 11 && s;
  });
  // The platform's own gateway: their records made by the relay (their summaries otherwise),
  // counted once every statement is in the log (the relay hands them over up to batch.rs
  // RECORD_DELAY later, not necessarily by the time the client's end() resolves).
  assert.equal(nativeRelayCounters.records - before.records, 3, 'two SELECTs and one UPDATE came as records');
  assert.equal(nativeRelayCounters.summaries - before.summaries, 0);
  assert.deepEqual(
    got.map((s) => [s.text, s.commandTag, s.outcome, s.rows ?? null, s.sqlstate ?? null, s.protocol]),
    [
      ['CREATE TABLE nq_s (id int, v int)', 'CREATE TABLE', 'success', null, null, 'simple'],
      ['INSERT INTO nq_s SELECT g, g FROM generate_series(1, 300) g', 'INSERT', 'success', 300, null, 'simple'],
      ['SELECT v FROM nq_s WHERE id = 100', 'SELECT', 'success', 1, null, 'simple'],
      ['SELECT v FROM nq_s WHERE id = 123', 'SELECT', 'success', 1, null, 'simple'],
      ['SELECT v FROM nq_s WHERE id = 234', 'SELECT', 'success', 1, null, 'simple'],
      ['UPDATE nq_s SET v = v + 1 WHERE id > 100', 'UPDATE', 'success', 200, null, 'simple'],
      ['UPDATE nq_s SET v = v + 1 WHERE id > 250', 'UPDATE', 'success', 50, null, 'simple'],
      ['SELECT v / 0 FROM nq_s WHERE id = 100', 'SELECT', 'failure', null, '22012', 'simple'],
      ['SELECT v / 0 FROM nq_s WHERE id = 200', 'SELECT', 'failure', null, '22012', 'simple'],
      ["SELECT v FROM nq_s WHERE id = 100 AND 'a' = 'a'", 'SELECT', 'success', 1, null, 'simple'],
      ["SELECT v FROM nq_s WHERE id = 101 AND 'b' = 'b'", 'SELECT', 'success', 1, null, 'simple'],
    ],
  );
  // A summarized record and the observed one of its shape differ only in their own values.
  const own = ({ text, durationMs, rows, ...rest }: Statement & { time?: string; connection?: unknown }) => {
    const { time, ...shape } = rest as typeof rest & { time?: string };
    return shape;
  };
  assert.deepEqual(own(got[3]!), own(got[2]!));
  assert.deepEqual(own(got[6]!), own(got[5]!));
  assert.ok((got[3]!.durationMs ?? -1) >= 0);
  // The records the relay made are canonical, chained and signed like any other.
  const verified = await t.cli(['audit', 'verify']);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});
