// Client compatibility (issue 16, items 1, 2, 3 and 5) with real clients through the gateway:
// node-postgres (pure JS), psql, raw protocol sockets for protocol 3.2 and the startup edge.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { auditEvents, allowLoopback, startGatewayProcess, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, gatewayPort, psql, rawExchange, sslRequestTls } from '../helpers/clients.js';
import { ScramClientSession } from '../../src/auth/scram/index.js';
import { Wire } from '../../src/gateway/wire.js';
import {
  cancelRequest,
  terminate,
  parseAuthentication,
  parseBackendKeyData,
  parseErrorOrNotice,
  saslInitialResponse,
  saslResponse,
} from '../../src/pgwire/index.js';

let t: TestPlatform;
let ca: string;
const PASSWORD = 'Compat-Passw0rd!';
const DOMAIN = 'localhost'; // a one-label parent: Node's TLS refuses the *.localhost wildcard
const children: ChildProcess[] = [];

before(async () => {
  t = await startTestPlatform({ domain: DOMAIN });
  const r = await t.cli(['server', 'create', 'cc1', '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, 'cc1');
  ca = readFileSync(t.platform.paths.caCert, 'utf8');
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  await t?.stop();
});

/** node-postgres (pure JS) with verify-full: the CA and the server's host name as SNI. */
function client(server = 'cc1', opts: { user?: string; password?: string; port?: number } = {}): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port: opts.port ?? gatewayPort(t),
    user: opts.user ?? 'alice',
    password: opts.password ?? PASSWORD,
    database: 'postgres',
    ssl: { ca, rejectUnauthorized: true, servername: `${server}.${DOMAIN}` },
  });
}

/** What a node-postgres client reports when its server ends it: every 'error', in order, until its
 * connection closed. After its FATAL the server closes the connection (PostgreSQL does too), and
 * node-postgres reports that close as a second error, "Connection terminated unexpectedly", to a
 * client that had not called end(). The listener stays for both: a once() listener left the
 * second one unhandled, and the test failed on it whenever the close arrived before the test had
 * reached end() (the other session's answer came later), also straight against PostgreSQL. */
async function errorsUntilClosed(c: pg.Client, action: () => Promise<void>): Promise<[string | undefined, string][]> {
  const errors: (Error & { code?: string })[] = [];
  c.on('error', (err: Error & { code?: string }) => errors.push(err));
  const closed = new Promise<void>((resolve) => c.once('end', () => resolve()));
  await action();
  await closed;
  return errors.map((e) => [e.code, e.message]);
}

/** A FATAL and then the close, as node-postgres reports them. */
const TERMINATED: [string | undefined, string][] = [
  ['57P01', 'terminating connection due to administrator command'],
  [undefined, 'Connection terminated unexpectedly'],
];

function cancelPacket(pid: number, secret: Buffer): Buffer {
  return cancelRequest(pid, secret);
}

test('1,000 connect/query/end cycles with node-postgres raise no error event', { timeout: 180_000 }, async () => {
  const errors: string[] = [];
  let done = 0;
  const worker = async () => {
    while (done < 1000) {
      done++;
      const c = client();
      c.on('error', (err: Error & { code?: string }) => errors.push(`${err.code ?? ''} ${err.message}`));
      await c.connect();
      const r = await c.query('select 1 as one');
      assert.equal(r.rows[0].one, 1);
      await c.end();
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  assert.deepEqual(errors, []);
});

test('a client that sends Terminate and waits for the close gets a quiet close, never a made-up 08006', { timeout: 180_000 }, async () => {
  for (let i = 0; i < 5; i++) {
    const { wire } = await login32({}, 0);
    const socket = wire.socket;
    wire.detach();
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.resume();
    socket.write(terminate()); // and no half-close: the server's exit reaches the gateway first
    await closed;
    assert.deepEqual(Buffer.concat(chunks), Buffer.alloc(0));
  }
});

test('BackendKeyData carries the real backend pid: pg_backend_pid, pg_terminate_backend, NOTIFY', { timeout: 180_000 }, async () => {
  const a = client();
  const b = client();
  await a.connect();
  await b.connect();
  const aPid = (a as unknown as { processID: number }).processID;
  const bPid = (b as unknown as { processID: number }).processID;
  assert.equal((await a.query('select pg_backend_pid() as pid')).rows[0].pid, aPid);
  assert.equal((await b.query('select pg_backend_pid() as pid')).rows[0].pid, bPid);
  // Its own row in pg_stat_activity.
  assert.equal((await a.query('select count(*)::int as n from pg_stat_activity where pid = $1', [aPid])).rows[0].n, 1);

  // LISTEN/NOTIFY: the sender's pid is the sender's processID.
  await a.query('listen compat_channel');
  const got: { processId: number; payload?: string }[] = [];
  a.on('notification', (n) => got.push({ processId: n.processId, payload: n.payload }));
  await b.query("notify compat_channel, 'from-b'");
  await a.query("notify compat_channel, 'from-a'"); // delivered at the end of a's own transaction
  await until('both notifications', async () => got.length >= 2, 10_000, 20);
  assert.deepEqual(got.find((n) => n.payload === 'from-b')?.processId, bPid);
  assert.deepEqual(got.find((n) => n.payload === 'from-a')?.processId, aPid);

  // pg_terminate_backend(processID) from a second session ends the first: its FATAL, then the close.
  const errors = await errorsUntilClosed(a, async () => {
    assert.equal((await b.query('select pg_terminate_backend($1) as ok', [aPid])).rows[0].ok, true);
  });
  assert.deepEqual(errors, TERMINATED);
  await b.end();
});

test('cancel through the gateway: the gateway secret cancels, a wrong secret is closed the same way and reaches nothing', { timeout: 180_000 }, async () => {
  const a = client();
  const b = client();
  await a.connect();
  await b.connect();
  const pid = (a as unknown as { processID: number }).processID;
  const secretInt = (a as unknown as { secretKey: number }).secretKey;
  const secret = Buffer.alloc(4);
  secret.writeInt32BE(secretInt);
  let settled = false;
  const sleeping = a.query('select pg_sleep(60)').then(
    () => ((settled = true), null),
    (e: Error & { code?: string }) => ((settled = true), e),
  );
  await until(
    'the query is running',
    async () => (await b.query('select state from pg_stat_activity where pid = $1', [pid])).rows[0]?.state === 'active',
    10_000,
    20,
  );

  const wrong = Buffer.from(secret);
  wrong[3] ^= 0x01;
  const wrongAnswer = await rawExchange(gatewayPort(t), cancelPacket(pid, wrong));
  assert.deepEqual(wrongAnswer, { data: Buffer.alloc(0), closed: true });
  // The server was never asked: the query is still running (checked through another session).
  assert.equal((await b.query('select state from pg_stat_activity where pid = $1', [pid])).rows[0]?.state, 'active');
  assert.equal(settled, false);

  const rightAnswer = await rawExchange(gatewayPort(t), cancelPacket(pid, secret));
  assert.deepEqual(rightAnswer, { data: Buffer.alloc(0), closed: true });
  const err = await sleeping;
  assert.equal(err?.code, '57014');
  assert.equal(err?.message, 'canceling statement due to user request');
  // node-postgres's own cancel (a second connection sending CancelRequest) works too.
  const again = a.query('select pg_sleep(60)').catch((e: Error & { code?: string }) => e);
  await until(
    'the second query is running',
    async () => (await b.query('select state from pg_stat_activity where pid = $1', [pid])).rows[0]?.state === 'active',
    10_000,
    20,
  );
  const canceller = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: 'alice',
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca, servername: `cc1.${DOMAIN}` },
  });
  (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(a, (a as unknown as { activeQuery: unknown }).activeQuery);
  assert.equal(((await again) as Error & { code?: string }).code, '57014');
  await a.end();
  await b.end();
});

/** A raw protocol 3.x client (3.2 is what PostgreSQL 18's libpq asks for): TLS, StartupMessage, SCRAM. */
async function login32(
  extraParams: Record<string, string> = {},
  minor = 2,
): Promise<{ wire: Wire; key: { processId: number; secretKey: Buffer }; negotiated: Buffer | null }> {
  const socket = await sslRequestTls(gatewayPort(t), { ca, servername: `cc1.${DOMAIN}` });
  const wire = new Wire(socket, 'message', 1 << 20);
  const params = Object.entries({ user: 'alice', database: 'postgres', ...extraParams });
  const body = Buffer.concat([...params.map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE((3 << 16) | minor, 4);
  wire.write(Buffer.concat([head, body]));
  let scram: ScramClientSession | null = null;
  let key: { processId: number; secretKey: Buffer } | null = null;
  let negotiated: Buffer | null = null;
  for (;;) {
    const m = await wire.readMessage();
    if (m.type === 'v') negotiated = Buffer.from(m.body);
    else if (m.type === 'E') throw new Error(parseErrorOrNotice(m.body).message);
    else if (m.type === 'K') key = parseBackendKeyData(Buffer.from(m.body));
    else if (m.type === 'R') {
      const auth = parseAuthentication(m.body);
      if (auth.kind === 'sasl') {
        scram = new ScramClientSession({ password: PASSWORD });
        wire.write(saslInitialResponse(scram.mechanism, scram.clientFirst()));
      } else if (auth.kind === 'saslContinue') wire.write(saslResponse(scram!.serverFirst(auth.data)));
      else if (auth.kind === 'saslFinal') scram!.serverFinal(auth.data);
    } else if (m.type === 'Z') return { wire, key: key!, negotiated };
  }
}

function simpleQuery(sql: string): Buffer {
  const text = Buffer.from(`${sql}\0`);
  const out = Buffer.alloc(5);
  out.write('Q', 0, 'latin1');
  out.writeInt32BE(4 + text.length, 1);
  return Buffer.concat([out, text]);
}

/** Runs a simple query; returns the first column of the first row, or the error. */
async function runQuery(wire: Wire, sql: string): Promise<{ value?: string; error?: { sqlstate: string; message: string } }> {
  wire.write(simpleQuery(sql));
  const out: { value?: string; error?: { sqlstate: string; message: string } } = {};
  for (;;) {
    const m = await wire.readMessage();
    if (m.type === 'D' && out.value === undefined) {
      const len = m.body.readInt32BE(2);
      out.value = m.body.subarray(6, 6 + len).toString('utf8');
    } else if (m.type === 'E') {
      const e = parseErrorOrNotice(m.body);
      out.error = { sqlstate: e.sqlstate, message: e.message };
    } else if (m.type === 'Z') return out;
  }
}

test('protocol 3.2: accepted without negotiation, a 32-byte cancel key with the real pid, and it cancels', { timeout: 180_000 }, async () => {
  const { wire, key, negotiated } = await login32();
  assert.equal(negotiated, null, 'no NegotiateProtocolVersion for 3.2');
  assert.equal(key.secretKey.length, 32);
  assert.equal((await runQuery(wire, 'select pg_backend_pid()')).value, String(key.processId));

  const b = client();
  await b.connect();
  const sleeping = runQuery(wire, 'select pg_sleep(60)');
  await until(
    'the query is running',
    async () => (await b.query('select state from pg_stat_activity where pid = $1', [key.processId])).rows[0]?.state === 'active',
    10_000,
    20,
  );
  // The first 4 bytes of the key alone (a 3.0-style cancel) do nothing.
  assert.deepEqual(await rawExchange(gatewayPort(t), cancelPacket(key.processId, key.secretKey.subarray(0, 4))), { data: Buffer.alloc(0), closed: true });
  assert.equal((await b.query('select state from pg_stat_activity where pid = $1', [key.processId])).rows[0]?.state, 'active');
  assert.deepEqual(await rawExchange(gatewayPort(t), cancelPacket(key.processId, key.secretKey)), { data: Buffer.alloc(0), closed: true });
  assert.deepEqual((await sleeping).error, { sqlstate: '57014', message: 'canceling statement due to user request' });
  await b.end();
  wire.socket.destroy();

  // A newer minor, or an unknown _pq_ option: NegotiateProtocolVersion names 3.2 and the option.
  const { wire: w2, key: k2, negotiated: n2 } = await login32({ '_pq_.no_such_option': 'on' });
  assert.ok(n2);
  assert.equal(n2.readInt32BE(0), (3 << 16) | 2);
  assert.equal(n2.readInt32BE(4), 1);
  assert.equal(n2.subarray(8).toString('latin1'), '_pq_.no_such_option\0');
  assert.equal(k2.secretKey.length, 32);
  w2.socket.destroy();
});

test('a server created after start is in the gateway certificate at once, on every gateway (Node verify-full)', { timeout: 180_000 }, async () => {
  // A second gateway process on the same platform (the change feed reaches it too).
  const gw = startGatewayProcess(t.dataDir, ['--domain', DOMAIN]);
  const gw2 = gw.child;
  children.push(gw2);
  const port2 = await gw.port;

  // A session open across the reissue keeps going; the key stays the same.
  const open = client();
  await open.connect();
  const peer = async (servername: string) => {
    const s = await sslRequestTls(gatewayPort(t), { ca, servername });
    const cert = s.getPeerX509Certificate()!;
    s.destroy();
    return cert;
  };
  const before = await peer(`cc1.${DOMAIN}`);
  assert.doesNotMatch(before.subjectAltName ?? '', /DNS:cc2\.localhost/);

  const r = await t.cli(['server', 'create', 'cc2', '--admin-user', 'carol', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, 'cc2');
  const c = client('cc2', { user: 'carol' });
  await c.connect();
  assert.equal((await c.query('select current_user as u')).rows[0].u, 'carol');
  await c.end();
  const after = await peer(`cc2.${DOMAIN}`);
  assert.match(after.subjectAltName ?? '', /DNS:cc1\.localhost, DNS:cc2\.localhost/);
  assert.match(after.subjectAltName ?? '', /DNS:\*\.localhost/);
  assert.equal(
    after.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
    before.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
  );
  assert.equal((await open.query('select 7 as n')).rows[0].n, 7);
  await open.end();
  // Written for the next start (and psql/libpq verify-full too).
  assert.match(new X509Certificate(readFileSync(path.join(t.platform.paths.caDir, 'gateway.crt'))).subjectAltName ?? '', /DNS:cc2\.localhost/);
  const viaPsql = await psql(
    conninfo(t, { host: `cc2.${DOMAIN}`, hostaddr: '127.0.0.1', user: 'carol', sslmode: 'verify-full', sslrootcert: t.platform.paths.caCert }),
    PASSWORD,
    ['-c', 'select 11'],
  );
  assert.equal(viaPsql.stdout, '11', viaPsql.stderr);

  // The second gateway: as soon as its snapshot routes cc2, its certificate covers it.
  const outcome = await until(
    'the second gateway serves cc2',
    async () => {
      const c2 = client('cc2', { user: 'carol', port: port2 });
      c2.on('error', () => undefined);
      try {
        await c2.connect();
        return (await c2.query('select current_user as u')).rows[0].u as string;
      } catch (err) {
        const e = err as Error & { code?: string };
        if (e.code === '28000') return null; // its snapshot does not have the server (or the rule) yet
        throw err;
      } finally {
        await c2.end().catch(() => undefined);
      }
    },
    10_000,
    50,
  );
  assert.equal(outcome, 'carol');
  gw2.kill('SIGTERM');
});

test('Terminate (or any invalid length) before SSLRequest: closed without a word, as PostgreSQL does, and recorded', { timeout: 180_000 }, async () => {
  const terminate = Buffer.from([0x58, 0, 0, 0, 4]);
  assert.deepEqual(await rawExchange(gatewayPort(t), terminate), { data: Buffer.alloc(0), closed: true });
  const tooShort = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0]);
  assert.deepEqual(await rawExchange(gatewayPort(t), tooShort), { data: Buffer.alloc(0), closed: true });
  // node-postgres's end() before its connection is up.
  const c = client();
  const errors: Error[] = [];
  c.on('error', (e) => errors.push(e));
  // Its connect() never settles once end() ran (as against PostgreSQL, which also just closes).
  void c.connect().catch(() => undefined);
  await c.end();
  assert.deepEqual(errors, []);
  await until(
    'the refusals are in the audit log',
    async () => auditEvents(t).filter((e) => e.type === 'connection.denied' && e.reason === 'invalid-startup-length').length >= 2,
    10_000,
    50,
  );
  // Other malformed startups still get PostgreSQL's FATAL.
  const v2 = Buffer.alloc(8);
  v2.writeInt32BE(8);
  v2.writeInt32BE(2 << 16, 4);
  const answer = await rawExchange(gatewayPort(t), v2);
  assert.equal(answer.data[0], 'E'.charCodeAt(0));
});

test('the platform holds no idle maintenance session: the admin terminates every idle backend without 42501', { timeout: 180_000 }, async () => {
  // A role the gateway has not seen: its login makes the platform read its verifier.
  const admin = client();
  await admin.connect();
  await admin.query("create role compat_bob login password 'Bob-Passw0rd!'");
  const bob = client('cc1', { user: 'compat_bob', password: 'Bob-Passw0rd!' });
  await bob.connect();
  await bob.query('select 1');
  const errors = await errorsUntilClosed(bob, async () => {
    const r = await admin.query("select pg_terminate_backend(pid) as ok, usename from pg_stat_activity where state = 'idle'");
    assert.ok(r.rows.length >= 1);
    assert.ok(r.rows.every((row: { ok: boolean }) => row.ok === true));
  });
  assert.deepEqual(errors, TERMINATED);
  await admin.end();
});
