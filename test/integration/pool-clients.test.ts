// Transaction pooling (issue 18) with real clients through the real gateway: postgres.js (named
// prepared statements by default), node-postgres (named statements), psql; 100 clients on 5
// server connections; cancel; the audit names each client's own session; what cannot work in
// transaction mode is refused clearly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import type pg from 'pg';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { allowLoopback, auditEvents, setAuditClasses, startTestPlatform, tempDir, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, gatewayClient, gatewayPort, psql } from '../helpers/clients.js';

let t: TestPlatform;
const SERVER = 'pt1';
const PASSWORD = 'Pool-Passw0rd!';
const POOL_SIZE = 5;

before(async () => {
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  await setAuditClasses(t, SERVER, ['READ', 'WRITE', 'ROLE', 'DDL']);
  const admin = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD });
  await admin.query('create table counters (id int primary key, n int not null)');
  await admin.query('insert into counters values (1, 0)');
  await admin.end();
  await poolMode('transaction', POOL_SIZE);
});
after(async () => {
  await t?.stop();
});

async function poolMode(mode: string, size: number): Promise<void> {
  const u = await t.cli(['server', 'update', SERVER, '--pool-mode', mode, '--pool-size', String(size)]);
  assert.equal(u.code, 0, u.stderr);
  await until('the pool mode in the gateway snapshot', async () => {
    const s = t.platform.snapshots.snapshot.servers.get(SERVER);
    return s?.poolMode === mode && s.poolSize === size;
  });
}

function sqlClient(app: string): postgres.Sql {
  return postgres({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: `alice@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
    max: 1,
    connection: { application_name: app },
    onnotice: () => undefined,
  });
}

/** Backends of role alice on the server now, seen through the platform's maintenance login. */
async function aliceBackends(): Promise<number> {
  const id = t.platform.snapshots.snapshot.servers.get(SERVER)!.id;
  const c = await t.platform.servers.connect(id);
  try {
    const r = await c.query<{ n: string }>("select count(*) n from pg_stat_activity where usename = 'alice' and backend_type = 'client backend'");
    return Number(r.rows[0]!.n);
  } finally {
    await c.end();
  }
}

test('100 postgres.js clients with named prepared statements share 5 server connections', { timeout: 240_000 }, async () => {
  const clients = Array.from({ length: 100 }, (_, i) => sqlClient(`ptx-${i}`));
  let maxBackends = 0;
  const watching = (async () => {
    for (let i = 0; i < 20; i++) {
      maxBackends = Math.max(maxBackends, await aliceBackends());
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await Promise.all(
      clients.map(async (sql, i) => {
        for (let round = 0; round < 5; round++) {
          // The same statement text, prepared under postgres.js's own name on each client.
          const [row] = await sql<{ v: number; who: string }[]>`select ${i}::int + ${round}::int as v, current_user as who`;
          assert.equal(row!.v, i + round);
          assert.equal(row!.who, 'alice');
          await sql.begin(async (tx) => {
            await tx`update counters set n = n + 1 where id = ${1}`;
          });
        }
      }),
    );
    await watching;
    const [row] = await clients[0]!<{ n: number }[]>`select n from counters where id = 1`;
    assert.equal(row!.n, 500);
    assert.ok(maxBackends <= POOL_SIZE, `at most ${POOL_SIZE} backends for 100 clients, saw ${maxBackends}`);
  } finally {
    await Promise.all(clients.map((c) => c.end({ timeout: 5 })));
  }
  const shown = await t.cli(['server', 'pool', 'show', SERVER, '-o', 'json']);
  assert.equal(shown.code, 0, shown.stderr);
  const body = JSON.parse(shown.stdout) as { pools: { user: string; opened: number; poolSize: number }[] };
  const alice = body.pools.find((p) => p.user === 'alice');
  assert.ok(alice, shown.stdout);
  assert.ok(alice.opened <= POOL_SIZE + 1, `opened ${alice.opened}`); // +1: a connection closed after an error may be replaced
  assert.equal(alice.poolSize, POOL_SIZE);
});

test('node-postgres named statements and a multi-message transaction keep working across server connections', { timeout: 120_000 }, async () => {
  const clients: pg.Client[] = [];
  for (let i = 0; i < 20; i++) clients.push(await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD, app: `ptn-${i}` }));
  try {
    await Promise.all(
      clients.map(async (c, i) => {
        for (let round = 0; round < 10; round++) {
          const r = await c.query({ name: 'add', text: 'select $1::int * 2 as v', values: [i * 100 + round] });
          assert.equal(r.rows[0].v, (i * 100 + round) * 2);
        }
        await c.query('begin');
        const pid1 = (await c.query('select pg_backend_pid() p')).rows[0].p;
        await new Promise((r) => setTimeout(r, 20));
        const pid2 = (await c.query('select pg_backend_pid() p')).rows[0].p;
        await c.query('commit');
        assert.equal(pid1, pid2, 'one server connection for the whole transaction');
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
});

test('psql in transaction mode: several statements in one Query, and an error ends only the transaction', async () => {
  // A script (psql goes on after an error in one): the session keeps working after it.
  const dir = tempDir();
  const script = path.join(dir, 'script.sql');
  writeFileSync(script, 'select 1; select 2;\nbegin;\nselect 1/0;\ncommit;\nselect 3;\n');
  chmodSync(dir, 0o755);
  const r = await psql(conninfo(t, { user: `alice@${SERVER}`, sslmode: 'require' }), PASSWORD, ['-v', 'ON_ERROR_STOP=0', '-f', script]);
  rmSync(dir, { recursive: true, force: true });
  assert.match(r.stderr, /division by zero/);
  assert.match(r.stdout, /^1\n2\n/);
  assert.match(r.stdout, /ROLLBACK\n3$/, 'commit of a failed transaction rolls back, then the session goes on');
});

test('cancel in transaction mode reaches the backend running the query now', { timeout: 60_000 }, async () => {
  const sql = sqlClient('ptx-cancel');
  try {
    await sql`select 1`; // connected, with the gateway's cancel key
    const q = sql`select pg_sleep(30)`;
    const sleeping = q.execute();
    await until('the sleep to run', async () => (await aliceBackendsRunning('select pg_sleep(30)')) > 0, 10_000, 50);
    await q.cancel();
    await assert.rejects(sleeping, (err: { code?: string }) => err.code === '57014');
    const [row] = await sql<{ v: number }[]>`select 7 as v`;
    assert.equal(row!.v, 7);
  } finally {
    await sql.end({ timeout: 5 });
  }
});

async function aliceBackendsRunning(query: string): Promise<number> {
  const id = t.platform.snapshots.snapshot.servers.get(SERVER)!.id;
  const c = await t.platform.servers.connect(id);
  try {
    const r = await c.query<{ n: string }>("select count(*) n from pg_stat_activity where usename = 'alice' and state = 'active' and query = $1", [query]);
    return Number(r.rows[0]!.n);
  } finally {
    await c.end();
  }
}

test('two clients on one server connection: each statement record names its own client session', { timeout: 60_000 }, async () => {
  await poolMode('transaction', 1);
  const a = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD, app: 'pt-audit-a' });
  const b = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD, app: 'pt-audit-b' });
  try {
    const pa = (await a.query('select pg_backend_pid() p, 1 as from_a')).rows[0].p;
    const pb = (await b.query('select pg_backend_pid() p, 1 as from_b')).rows[0].p;
    assert.equal(pa, pb, 'pool size 1: both clients ran on the same backend');
    type S = { type: string; applicationName?: string; text?: string; connection: { connId: string; clientPort: number } };
    const records = await until('both statement records', async () => {
      const all = auditEvents<S>(t).filter((e) => e.type === 'statement' && /from_[ab]/.test(e.text ?? ''));
      return all.length >= 2 ? all : null;
    });
    const ra = records.find((e) => /from_a/.test(e.text!))!;
    const rb = records.find((e) => /from_b/.test(e.text!))!;
    assert.equal(ra.applicationName, 'pt-audit-a');
    assert.equal(rb.applicationName, 'pt-audit-b');
    assert.notEqual(ra.connection.connId, rb.connection.connId);
    assert.notEqual(ra.connection.clientPort, rb.connection.clientPort);
  } finally {
    await a.end();
    await b.end();
    await poolMode('transaction', POOL_SIZE);
  }
});

test("one backend, two applications: each client's statements run under its own application_name", { timeout: 60_000 }, async () => {
  await poolMode('transaction', 1);
  const a = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD, app: "app 'a' \\ one" });
  const b = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD, app: 'app-b' });
  const none = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD });
  try {
    const sql = `select pg_backend_pid() as pid, current_setting('application_name') as app,
      (select application_name from pg_stat_activity where pid = pg_backend_pid()) as seen`;
    for (let round = 0; round < 2; round++) {
      const ra = (await a.query(sql)).rows[0];
      const rb = (await b.query(sql)).rows[0];
      const rn = (await none.query(sql)).rows[0];
      assert.equal(ra.pid, rb.pid, 'pool size 1: one backend');
      assert.deepEqual([ra.app, ra.seen], ["app 'a' \\ one", "app 'a' \\ one"]);
      assert.deepEqual([rb.app, rb.seen], ['app-b', 'app-b']);
      assert.deepEqual([rn.app, rn.seen], ['', '']);
    }
    assert.equal((await a.query('show application_name')).rows[0].application_name, "app 'a' \\ one");
  } finally {
    await a.end();
    await b.end();
    await none.end();
    await poolMode('transaction', POOL_SIZE);
  }
});

test('transaction mode gives a backend back without a reset: the statements prepared on it stay for the next transaction', { timeout: 60_000 }, async () => {
  await poolMode('transaction', 1);
  const c = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD });
  try {
    const prepared = async () => (await c.query<{ n: number }>("select count(*)::int as n from pg_prepared_statements where name like 'pgw\\_%'")).rows[0]!.n;
    await c.query({ name: 'kept_across', text: 'select 1 as one' });
    // Each query below is a transaction of its own, lent the one backend again.
    assert.ok((await prepared()) >= 1, 'the gateway statement is still prepared on the backend');
    assert.equal((await c.query({ name: 'kept_across', text: 'select 1 as one' })).rows[0].one, 1);
    assert.ok((await prepared()) >= 1);
  } finally {
    await c.end();
    await poolMode('transaction', POOL_SIZE);
  }
});

test('LISTEN is refused in transaction mode with a clear error; the session goes on', async () => {
  const c = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD });
  try {
    await assert.rejects(c.query('listen jobs'), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, '0A000');
      assert.equal(err.message, 'LISTEN is not supported on a server in transaction pooling mode');
      return true;
    });
    assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
  } finally {
    await c.end();
  }
});
