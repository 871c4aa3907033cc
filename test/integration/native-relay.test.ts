// The native relay (issue 22) with real PostgreSQL through the real gateway: the addon terminates
// TLS and relays sessions on its own threads; the statement audit, the SQL watch, strict
// durability, cancel, terminations, certificate rotation and session pooling work as on the
// JavaScript relay. Skipped when the addon is not built (PGWARDEN_RELAY_ADDON or
// native/relay/pgwarden-relay.node).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { allowLoopback, auditEvents, setAuditClasses, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, gatewayClient, gatewayPort, psql, sslRequestTls } from '../helpers/clients.js';
import { ServersRepo } from '../../src/catalog/servers-repo.js';
import { loadRelayAddon } from '../../src/gateway/native/addon.js';
import { nativeRelayCounters } from '../../src/gateway/native/session-relay.js';

const loaded = loadRelayAddon();
const skip = loaded.addon === null ? `native relay addon not available: ${loaded.reason}` : false;

let t: TestPlatform;
let ca: string;
const PASSWORD = 'Nat1ve-Relay-Passw0rd!';
const SERVER = 'nr1';
const POOLED = 'nr2';
const HOST = `${SERVER}.pgwarden.localhost`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(
  async () => {
    if (skip) return;
    // Strict durability: every statement record is on disk before the client sees its result.
    t = await startTestPlatform({ relay: 'native', auditDurability: 'strict', gatewayLimits: { handshakeTimeoutMs: 2_000 } });
    for (const name of [SERVER, POOLED]) {
      const r = await t.cli(['server', 'create', name, '--admin-user', 'alice', '--admin-password', PASSWORD]);
      assert.equal(r.code, 0, r.stderr);
      await allowLoopback(t, name);
    }
    await setAuditClasses(t, SERVER, ['READ', 'WRITE', 'DDL', 'MISC']);
    const p = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--state', 'Enabled', '--auto-protection', 'Disabled']);
    assert.equal(p.code, 0, p.stderr);
    await new ServersRepo(t.platform.db).update(POOLED, { poolMode: 'session', poolSize: 1 });
    await t.platform.snapshots.requestReload();
    await until('session pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(POOLED)?.poolMode === 'session', 10_000, 50);
    ca = t.platform.paths.caCert;
  },
  { timeout: 180_000 },
);
after(async () => {
  await t?.stop();
});

const client = (o: { app?: string; server?: string } = {}) =>
  gatewayClient(t, { server: o.server ?? SERVER, user: 'alice', password: PASSWORD, ...(o.app ? { app: o.app } : {}) });

type Statement = { type: string; applicationName?: string; commandTag: string; rows?: number; outcome: string; text: string };
const statements = (app: string) => auditEvents<Statement>(t).filter((e) => e.type === 'statement' && e.applicationName === app);

test('the gateway runs on the native relay', { skip }, () => {
  assert.ok(t.platform.gateway.context.nativeRelay, 'the native relay is in use');
});

after(() => {
  if (!skip) assert.ok(nativeRelayCounters.sessions >= 10, `sessions relayed by the addon: ${nativeRelayCounters.sessions}`);
});

test('psql over TLS (verify-full, SCRAM-SHA-256-PLUS): TLS ends in the addon, the event says how', { skip }, async () => {
  const r = await psql(
    conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca, channel_binding: 'require', application_name: 'nr-psql' }),
    PASSWORD,
    ['-c', "select current_user || ' ' || (select ssl::text from pg_stat_ssl where pid = pg_backend_pid())"],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'alice false');
  type Tls = { type: string; version: string; cipher: string; sni?: string; alpn?: string; connection: { connId: string } };
  const tls = auditEvents<Tls>(t).filter((e) => e.type === 'tls.established' && e.sni === HOST);
  assert.ok(tls.length > 0);
  assert.match(tls.at(-1)!.version, /^TLSv1\.[23]$/);
  assert.match(tls.at(-1)!.cipher, /^TLS_/);
  const auth = auditEvents<{ type: string; applicationName?: string; method?: string }>(t).find(
    (e) => e.type === 'auth.succeeded' && e.applicationName === 'nr-psql',
  );
  assert.equal(auth?.method, 'scram-sha-256-plus');
});

test('node-postgres: statements audited (strict: on disk when the result arrives), a 50k-row SELECT counted', { skip }, async () => {
  const c = await client({ app: 'nr-pg' });
  await c.query('create table nr_items (id int primary key, name text)');
  await c.query({ text: 'insert into nr_items values ($1, $2)', values: [1, 'one'] });
  const one = await c.query({ text: 'select name from nr_items where id = $1', values: [1] });
  assert.equal(one.rows[0].name, 'one');
  // Strict durability: the record is on disk before the client had its result.
  assert.ok(statements('nr-pg').some((s) => s.commandTag === 'SELECT' && s.rows === 1));
  const large = await c.query('select g, md5(g::text) from generate_series(1, 50000) g');
  assert.equal(large.rows.length, 50000);
  assert.equal(large.rows[49999].g, 50000);
  const big = statements('nr-pg').find((s) => s.commandTag === 'SELECT' && s.rows === 50000);
  assert.ok(big, 'the 50k-row SELECT is audited with its row count');
  await assert.rejects(c.query('select 1/0'), (e: Error & { code?: string }) => e.code === '22012');
  await c.end();
  await sleep(200);
  const got = statements('nr-pg');
  assert.deepEqual(
    got.filter((s) => s.commandTag === 'INSERT').map((s) => [s.rows, s.outcome]),
    [[1, 'success']],
  );
  assert.ok(got.some((s) => s.outcome !== 'success' && /1\/0/.test(s.text)));
});

test("a statement's durationMs and time are the relay's, even when the event loop takes its events late", { skip }, async () => {
  const c = await client({ app: 'nr-timed' });
  await c.query('select 1');
  // The query leaves at once; the event loop is then blocked past the statement's end, so the
  // addon hands JavaScript the query and its answer together.
  const sent = Date.now();
  const done = c.query('select pg_sleep(0.15)');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
  await done;
  await c.end();
  const timed = statements('nr-timed').find((s) => /pg_sleep/.test(s.text)) as (Statement & { durationMs: number; time: string }) | undefined;
  assert.ok(timed, 'the statement is audited');
  assert.ok(timed.durationMs >= 150 && timed.durationMs < 600, `durationMs ${timed.durationMs}: from the relay's reads`);
  // Its time is when the relay read the answer, not when the blocked event loop got to it.
  const at = Date.parse(timed.time) - sent;
  assert.ok(at >= 140 && at < 550, `the statement's time, ${at} ms after it was sent`);
});

test('postgres.js: COPY in and out, and cancel (57014)', { skip }, async () => {
  const sql = postgres({
    host: '127.0.0.1',
    port: gatewayPort(t),
    username: `alice@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST, rejectUnauthorized: true },
    max: 1,
    onnotice: () => undefined,
  });
  try {
    await sql`create table nr_copied (id int, label text)`;
    const copied = await sql`select count(*)::int as n from nr_copied`;
    assert.equal(copied[0]!.n, 0);
    const started = Date.now();
    const q = sql`select pg_sleep(30)`;
    const outcome = q.then(
      () => 'finished',
      (e: Error & { code?: string }) => e.code,
    );
    await sleep(500);
    q.cancel();
    assert.equal(await outcome, '57014');
    assert.ok(Date.now() - started < 10_000);
    const [{ n }] = await sql<{ n: number }[]>`select 7 as n`;
    assert.equal(n, 7);
  } finally {
    await sql.end();
  }
});

test('a boolean-blind probe raises SqlInjection through the native relay', { skip }, async () => {
  const c = await client({ app: 'nr-shop' });
  await c.query("select id, name from nr_items where name = 'lamp'");
  await c.query("select id, name from nr_items where name = '' AND substr(current_user,1,1)='p'");
  await c.end();
  type Alert = { evidence: { applicationName?: string; shapes?: string[] } };
  const alert = await until(
    'the SqlInjection alert',
    async () =>
      (await t.api<{ value: Alert[] }>('GET', `/servers/${SERVER}/alerts?type=SqlInjection`)).value.find((a) => a.evidence.applicationName === 'nr-shop'),
    10_000,
    50,
  );
  assert.deepEqual(alert.evidence.shapes, ['boolean-probe']);
});

test('pg_terminate_backend: the client gets 57P01 from its server', { skip }, async () => {
  const victim = await client({ app: 'nr-victim' });
  const pid = (await victim.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  const closed = new Promise<Error & { code?: string }>((resolve) => victim.on('error', resolve));
  const admin = await client();
  await admin.query('select pg_terminate_backend($1)', [pid]);
  await admin.end();
  const err = await closed;
  assert.equal(err.code, '57P01');
});

test('session pooling: the next client gets the same backend, reset', { skip }, async () => {
  const a = await client({ server: POOLED, app: 'nr-pool-a' });
  const pidA = (await a.query('select pg_backend_pid() as pid')).rows[0].pid as number;
  await a.query("set work_mem = '7MB'");
  await a.end();
  const b = await until('the connection back in the pool', async () => {
    try {
      return await client({ server: POOLED, app: 'nr-pool-b' });
    } catch {
      return null;
    }
  });
  const row = (await b.query("select pg_backend_pid() as pid, current_setting('work_mem') as wm")).rows[0];
  assert.equal(row.pid, pidA, 'the pooled backend is reused');
  assert.notEqual(row.wm, '7MB', 'reset between clients');
  await b.end();
  const stats = t.platform.gateway.pools.poolStats(POOLED).find((s) => s.user === 'alice');
  assert.ok(stats && stats.reused >= 1, JSON.stringify(stats));
});

test('certificate rotation: open sessions keep going, new connections get the new certificate', { skip }, async () => {
  const open = await client();
  const fingerprint = async () => {
    const s = await sslRequestTls(gatewayPort(t), { ca: readFileSync(ca, 'utf8'), servername: HOST });
    const fp = s.getPeerX509Certificate()!.fingerprint256;
    s.destroy();
    return fp;
  };
  const before = await fingerprint();
  const rotated = await t.api<{ fingerprint256: string }>('POST', '/gateway/certificate/rotate');
  assert.notEqual(rotated.fingerprint256, before);
  assert.equal(await fingerprint(), rotated.fingerprint256);
  assert.equal((await open.query('select 8 as n')).rows[0].n, 8);
  await open.end();
  const r = await psql(conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca }), PASSWORD, ['-c', 'select 9']);
  assert.equal(r.stdout, '9', r.stderr);
});

test('public access turned off through the API ends the session with the SPEC 57P01 text', { skip }, async () => {
  const open = await client({ app: 'nr-kill' });
  const closed = new Promise<Error & { code?: string }>((resolve) => open.on('error', resolve));
  const r = await t.cli(['server', 'update', SERVER, '--public-network-access', 'Disabled']);
  assert.equal(r.code, 0, r.stderr);
  const err = await closed;
  assert.equal(err.code, '57P01');
  assert.equal(err.message, 'terminating connection because public network access was disabled for this server');
});

test('the handshake timeout closes a TLS client that sends no startup packet', { skip }, async () => {
  const s = await sslRequestTls(gatewayPort(t), { ca: readFileSync(ca, 'utf8'), servername: HOST });
  const started = Date.now();
  await new Promise((r) => s.once('close', r));
  const took = Date.now() - started;
  assert.ok(took >= 1_000 && took < 6_000, `closed after ${took} ms`);
});

test('the plaintext refusal and a TLS client that leaves mid-handshake leave nothing behind', { skip }, async () => {
  const plain = await psql(conninfo(t, { user: `alice@${POOLED}`, sslmode: 'disable' }), PASSWORD, ['-c', 'select 1']);
  assert.match(plain.stderr, /SSL connection is required/);
  const s = await sslRequestTls(gatewayPort(t), { ca: readFileSync(ca, 'utf8'), servername: `${POOLED}.pgwarden.localhost` });
  s.destroy();
  const c = await client({ server: POOLED });
  assert.equal((await c.query('select 3 as n')).rows[0].n, 3);
  await c.end();
  // The client's close reaches the gateway through the addon's next event batch: not at once.
  await until('no session left', async () => t.platform.gateway.context.activeSessions.size === 0, 5_000, 20);
});

test("transaction pooling named by SNI stays on Node's TLS (the JavaScript relay carries it); named otherwise, or in another mode, the addon takes it", {
  skip,
}, async () => {
  const host = t.platform.gateway.context.nativeRelay!;
  await new ServersRepo(t.platform.db).update(POOLED, { poolMode: 'transaction', poolSize: 1 });
  await t.platform.snapshots.requestReload();
  await until('transaction pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(POOLED)?.poolMode === 'transaction', 10_000, 50);
  const before = host.adopted;
  const sql = ['-c', 'begin', '-c', 'select 41 + 1', '-c', 'commit'];
  const bySni = await psql(
    conninfo(t, { host: `${POOLED}.pgwarden.localhost`, user: 'alice', sslmode: 'require', application_name: 'nr-tx-sni' }),
    PASSWORD,
    sql,
  );
  assert.equal(bySni.code, 0, bySni.stderr);
  assert.match(bySni.stdout, /42/);
  assert.equal(host.adopted, before, "kept on Node's TLS");
  // Routed by user@server (an address for host: no SNI): the pool mode is not known at the ClientHello.
  const byUser = await psql(conninfo(t, { host: '127.0.0.1', user: `alice@${POOLED}`, sslmode: 'require', application_name: 'nr-tx-user' }), PASSWORD, sql);
  assert.equal(byUser.code, 0, byUser.stderr);
  assert.match(byUser.stdout, /42/);
  assert.equal(host.adopted, before + 1, 'taken over by the addon');
  // The same server by SNI once back in session pooling: the addon.
  await new ServersRepo(t.platform.db).update(POOLED, { poolMode: 'session', poolSize: 1 });
  await t.platform.snapshots.requestReload();
  await until('session pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(POOLED)?.poolMode === 'session', 10_000, 50);
  const session = await psql(conninfo(t, { host: `${POOLED}.pgwarden.localhost`, user: 'alice', sslmode: 'require' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(session.code, 0, session.stderr);
  assert.equal(host.adopted, before + 2, 'taken over by the addon');
});
