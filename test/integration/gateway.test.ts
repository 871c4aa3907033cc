// The gateway with real clients: psql/libpq, node-postgres, postgres.js and raw TLS sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import postgres from 'postgres';
import { auditEvents, allowLoopback, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql, sslRequestTls, readError, startupPacket, gatewayPort } from '../helpers/clients.js';
import { clientErrors } from '../../src/pgwire/client-errors.js';

let t: TestPlatform;
let ca: string;
const PASSWORD = 'Gatew4y-Passw0rd!';
const HOST = 'gw1.pgwarden.localhost';

before(async () => {
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', 'gw1', '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, 'gw1');
  ca = t.platform.paths.caCert;
});
after(async () => {
  await t?.stop();
});

const events = () => auditEvents(t);

test('plaintext is refused with the exact text; require and verify-full work', async () => {
  const plain = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'disable' }), PASSWORD, ['-c', 'select 1']);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr, /FATAL: {2}SSL connection is required\. Please specify SSL options and retry\./);

  const req = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'require' }), PASSWORD, ['-c', 'select current_user']);
  assert.equal(req.code, 0, req.stderr);
  assert.equal(req.stdout, 'alice');

  const full = await psql(conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca }), PASSWORD, [
    '-c',
    "select current_user || ' ' || (select ssl::text from pg_stat_ssl where pid = pg_backend_pid())",
  ]);
  assert.equal(full.code, 0, full.stderr);
  // The server itself sees a Unix-socket session: TLS ends at the gateway.
  assert.equal(full.stdout, 'alice false');

  const wrongHost = await psql(conninfo(t, { host: 'gw1.example.com', user: 'alice@gw1', sslmode: 'verify-full', sslrootcert: ca }), PASSWORD, [
    '-c',
    'select 1',
  ]);
  assert.notEqual(wrongHost.code, 0);
  assert.match(wrongHost.stderr, /server certificate for ".*" does not match host name "gw1\.example\.com"|does not match host name/);
});

test('SCRAM-SHA-256-PLUS: channel_binding=require works, and the event says so', async () => {
  const r = await psql(
    conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca, channel_binding: 'require', application_name: 'cb-check' }),
    PASSWORD,
    ['-c', 'select 42'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '42');
  await new Promise((res) => setTimeout(res, 100));
  const ok = events().find((e) => e.type === 'auth.succeeded' && e.applicationName === 'cb-check');
  assert.ok(ok);
  assert.equal(ok.method, 'scram-sha-256-plus');
  assert.equal(ok.server, 'gw1');
  assert.equal(ok.user, 'alice');
});

test('wrong password gives 28P01; an unknown user gets the same error', async () => {
  const wrong = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'require', application_name: 'wrongpw' }), 'not-the-password', ['-c', 'select 1']);
  assert.match(wrong.stderr, /FATAL: {2}password authentication failed for user "alice"/);
  const unknown = await psql(conninfo(t, { user: 'nosuchrole@gw1', sslmode: 'require' }), 'whatever', ['-c', 'select 1']);
  assert.match(unknown.stderr, /FATAL: {2}password authentication failed for user "nosuchrole"/);
  const c = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: 'alice@gw1',
    password: 'nope',
    database: 'postgres',
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST },
  });
  await assert.rejects(c.connect(), (e: Error & { code?: string }) => e.code === '28P01');
  await new Promise((res) => setTimeout(res, 100));
  const failed = events().find((e) => e.type === 'auth.failed' && e.applicationName === 'wrongpw');
  assert.ok(failed);
  assert.equal(failed.sqlstate, '28P01');
  assert.match(String(failed.reason), /wrong password/);
});

test('routing: SNI, user@server (last @), options server=NAME; unknown server gets the exact error', async () => {
  const viaOption = await psql(conninfo(t, { user: 'alice', sslmode: 'require', options: 'server=gw1' }), PASSWORD, ['-c', 'select current_user']);
  assert.equal(viaOption.stdout, 'alice', viaOption.stderr);
  const unknown = await psql(conninfo(t, { user: 'alice@nope', sslmode: 'require' }), PASSWORD, ['-c', 'select 1']);
  assert.match(unknown.stderr, new RegExp(clientErrors.unknownServer.message.replace(/[.*+?^${}()|[\]\\<>]/g, '\\$&')));
  const none = await psql(conninfo(t, { user: 'alice', sslmode: 'require' }), PASSWORD, ['-c', 'select 1']);
  assert.match(none.stderr, /Invalid Username specified/);
  // A role with @ in its name is reached with user@server, split at the last @.
  const admin = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: 'alice@gw1',
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST },
  });
  await admin.connect();
  await admin.query(`create role "dev@example.com" login password 'Dev-Passw0rd!'`);
  await admin.end();
  const at = await psql(conninfo(t, { user: 'dev@example.com@gw1', sslmode: 'require' }), 'Dev-Passw0rd!', ['-c', 'select current_user']);
  assert.equal(at.stdout, 'dev@example.com', at.stderr);
  const atSni = await psql(conninfo(t, { host: HOST, user: 'dev@example.com', sslmode: 'verify-full', sslrootcert: ca }), 'Dev-Passw0rd!', [
    '-c',
    'select current_user',
  ]);
  assert.equal(atSni.stdout, 'dev@example.com', atSni.stderr);
});

test('minimalTlsVersion TLS1_3 refuses TLS 1.2 clients with the exact text; TLS1_2 accepts both', async () => {
  assert.equal((await t.cli(['server', 'update', 'gw1', '--minimal-tls-version', 'TLS1_3'])).code, 0);
  await new Promise((r) => setTimeout(r, 1000)); // applies within a second
  const old = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'require', ssl_max_protocol_version: 'TLSv1.2' }), PASSWORD, ['-c', 'select 1']);
  assert.match(old.stderr, /FATAL: {2}TLS version used does not meet minimal requirements for this server\. Please use a higher TLS version and retry\./);
  const raw = await sslRequestTls(gatewayPort(t), { maxVersion: 'TLSv1.2', ca: readFileSync(ca, 'utf8'), servername: HOST });
  assert.equal(raw.getProtocol(), 'TLSv1.2');
  assert.match(raw.getCipher().name, /^ECDHE-(ECDSA|RSA)-AES(128|256)-GCM-SHA(256|384)$/);
  const errP = readError(raw);
  raw.write(startupPacket({ user: 'alice', database: 'postgres' }));
  assert.deepEqual(await errP, { sqlstate: '28000', message: clientErrors.tlsTooOld.message, severity: 'FATAL' });
  const v13 = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'require', ssl_min_protocol_version: 'TLSv1.3' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(v13.code, 0, v13.stderr);

  assert.equal((await t.cli(['server', 'update', 'gw1', '--minimal-tls-version', 'TLS1_2'])).code, 0);
  await new Promise((r) => setTimeout(r, 1000));
  const ok12 = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'require', ssl_max_protocol_version: 'TLSv1.2' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(ok12.code, 0, ok12.stderr);
  // Nothing older than TLS 1.2, and no non-AEAD suite, is offered at all.
  await assert.rejects(sslRequestTls(gatewayPort(t), { maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ca: readFileSync(ca, 'utf8'), servername: HOST }));
  await assert.rejects(
    sslRequestTls(gatewayPort(t), {
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA256:AES128-SHA',
      ca: readFileSync(ca, 'utf8'),
      servername: HOST,
    }),
  );
});

test('node-postgres with full verification: queries, prepared statements, COPY, LISTEN/NOTIFY, large results', async () => {
  const ssl = { ca: readFileSync(ca, 'utf8'), servername: HOST, rejectUnauthorized: true };
  const c = new pg.Client({ host: '127.0.0.1', port: gatewayPort(t), user: 'alice', password: PASSWORD, database: 'postgres', ssl });
  await c.connect();
  await c.query('create table items (id int primary key, name text)');
  for (let i = 0; i < 20; i++) await c.query({ name: 'ins', text: 'insert into items values ($1, $2)', values: [i, `item-${i}`] });
  assert.equal((await c.query({ name: 'sel', text: 'select name from items where id = $1', values: [7] })).rows[0].name, 'item-7');

  // COPY FROM STDIN and TO STDOUT through pg's copy protocol (pg-copy-streams is not needed:
  // the simple query protocol carries CopyData when we drive it by hand).
  const big = await c.query("select repeat('x', 1000) as pad, g from generate_series(1, 20000) g");
  assert.equal(big.rows.length, 20000);
  assert.equal(big.rows[19999].g, 20000);

  const listener = new pg.Client({ host: '127.0.0.1', port: gatewayPort(t), user: 'alice', password: PASSWORD, database: 'postgres', ssl });
  await listener.connect();
  await listener.query('listen news');
  const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
  await c.query("notify news, 'hello through the gateway'");
  assert.equal(await got, 'hello through the gateway');
  await listener.end();
  await c.end();
});

test('postgres.js: prepared statements, COPY in and out, large results, cancel', async () => {
  const sql = postgres({
    host: '127.0.0.1',
    port: gatewayPort(t),
    username: 'alice',
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST, rejectUnauthorized: true },
    max: 2,
    onnotice: () => undefined,
  });
  try {
    await sql`create table copied (id int, label text)`;
    const rows = 5000;
    const input = Readable.from(
      (function* () {
        for (let i = 0; i < rows; i++) yield `${i}\tlabel-${i}\n`;
      })(),
    );
    await pipeline(input, await sql`copy copied from stdin`.writable());
    const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from copied`;
    assert.equal(n, rows);
    let out = '';
    await pipeline(
      await sql`copy (select * from copied order by id) to stdout`.readable(),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          out += chunk.toString();
          cb();
        },
      }),
    );
    assert.equal(out.split('\n').filter(Boolean).length, rows);
    assert.ok(out.startsWith('0\tlabel-0\n'));
    const prepared = await sql`select label from copied where id = ${4242}`.execute();
    assert.equal(prepared[0]?.label, 'label-4242');
    const large = await sql`select g, md5(g::text) from generate_series(1, 50000) g`;
    assert.equal(large.length, 50000);

    // CancelRequest through the gateway's own key: the server's pg_sleep stops.
    const started = Date.now();
    const q = sql`select pg_sleep(30)`;
    const outcome = q.then(
      () => 'finished',
      (e: Error & { code?: string }) => e.code,
    );
    await new Promise((r) => setTimeout(r, 500));
    q.cancel();
    assert.equal(await outcome, '57014');
    assert.ok(Date.now() - started < 10_000);
  } finally {
    await sql.end();
  }
});

test('a bogus cancel key gets no answer that tells it apart', async () => {
  const { rawExchange } = await import('../helpers/clients.js');
  const cancel = Buffer.alloc(16);
  cancel.writeInt32BE(16, 0);
  cancel.writeInt32BE(80877102, 4);
  cancel.writeInt32BE(12345, 8);
  cancel.writeInt32BE(6789, 12);
  const r = await rawExchange(gatewayPort(t), cancel);
  assert.equal(r.closed, true);
  assert.equal(r.data.length, 0);
});

test('200 concurrent sessions; a terminated backend is an error for its client only', async () => {
  const ssl = { ca: readFileSync(ca, 'utf8'), servername: HOST };
  const clients = Array.from(
    { length: 200 },
    () => new pg.Client({ host: '127.0.0.1', port: gatewayPort(t), user: 'alice', password: PASSWORD, database: 'postgres', ssl }),
  );
  await Promise.all(clients.map((c) => c.connect()));
  try {
    const pids = await Promise.all(clients.map(async (c) => (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number));
    assert.equal(new Set(pids).size, 200);
    // pg reports the server's FATAL, then the closed connection: keep listening for both.
    const victimErrors: (Error & { code?: string })[] = [];
    const victimError = new Promise<Error & { code?: string }>((resolve) =>
      clients[0]!.on('error', (e: Error & { code?: string }) => {
        victimErrors.push(e);
        resolve(victimErrors[0]!);
      }),
    );
    const killer = new pg.Client({ host: '127.0.0.1', port: gatewayPort(t), user: 'alice', password: PASSWORD, database: 'postgres', ssl });
    await assert.rejects(killer.connect(), (e: Error & { code?: string }) => e.code === '53300' && e.message === 'sorry, too many clients already');
    const admin = clients[1]!;
    await admin.query('select pg_terminate_backend($1)', [pids[0]]);
    const err = await victimError;
    assert.equal(err.code, '57P01');
    const alive = await Promise.all(clients.slice(1).map(async (c) => (await c.query('select 1 as one')).rows[0].one as number));
    assert.equal(alive.length, 199);
    assert.ok(alive.every((v) => v === 1));
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
});

test('events and metrics: tls.established, session.ended, counters at /metrics', async () => {
  const r = await psql(conninfo(t, { user: 'alice@gw1', sslmode: 'require', application_name: 'events-check' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(r.code, 0, r.stderr);
  await new Promise((res) => setTimeout(res, 300));
  const all = events();
  const ended = all.find((e) => e.type === 'session.ended' && e.applicationName === 'events-check');
  assert.ok(ended, 'session.ended');
  assert.ok((ended.bytesFromClient as number) > 0 && (ended.bytesToClient as number) > 0);
  const connId = (ended.connection as { connId: string }).connId;
  const tlsEvent = all.find((e) => e.type === 'tls.established' && (e.connection as { connId: string }).connId === connId);
  assert.ok(tlsEvent);
  assert.match(String(tlsEvent.version), /^TLSv1\.[23]$/);
  const denied = all.find((e) => e.type === 'connection.denied' && e.reason === 'ssl-required');
  assert.ok(denied);
  assert.equal(denied.sqlstate, '28000');
  const metrics = await t.api<string>('GET', '/metrics');
  assert.match(metrics, /pgwarden_gateway_connections_total\{listener="public"\} \d+/);
  assert.match(metrics, /pgwarden_gateway_denied_total\{reason="ssl-required"\} [1-9]/);
  assert.match(metrics, /pgwarden_catalog_connected 1/);
  // The native relay's backpressure towards the audit (none in a light test).
  if (process.env.PGWARDEN_RELAY !== 'js') assert.match(metrics, /pgwarden_gateway_relay_backlog_waits_total 0/);
  else assert.doesNotMatch(metrics, /pgwarden_gateway_relay_backlog_waits_total/);
});

test('PostgreSQL 17 direct TLS (ALPN postgresql) is accepted; without ALPN it is closed', async () => {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: 'alice@gw1',
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST, ALPNProtocols: ['postgresql'] },
    sslnegotiation: 'direct',
  } as pg.ClientConfig);
  await c.connect();
  assert.equal((await c.query('select 5 as n')).rows[0].n, 5);
  await c.end();
  const { connect } = await import('node:tls');
  const noAlpn = await new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: gatewayPort(t), ca: readFileSync(ca, 'utf8'), servername: HOST });
    s.on('error', () => resolve(true));
    s.on('close', () => resolve(true));
    s.on('secureConnect', () => s.write(startupPacket({ user: 'alice@gw1' })));
    s.on('data', () => resolve(false));
  });
  assert.equal(noAlpn, true);
});

test('replacing the certificate keeps open sessions; new connections get the new one', async () => {
  const open = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: 'alice@gw1',
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST },
  });
  await open.connect();
  const { fingerprint256: before } = await peerFingerprint();
  const rotated = await t.api<{ fingerprint256: string }>('POST', '/gateway/certificate/rotate');
  assert.notEqual(rotated.fingerprint256, before);
  assert.equal((await peerFingerprint()).fingerprint256, rotated.fingerprint256);
  assert.equal((await open.query('select 8 as n')).rows[0].n, 8);
  await open.end();
  const r = await psql(conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca }), PASSWORD, ['-c', 'select 9']);
  assert.equal(r.stdout, '9', r.stderr);
});

async function peerFingerprint(): Promise<{ fingerprint256: string }> {
  const s = await sslRequestTls(gatewayPort(t), { ca: readFileSync(ca, 'utf8'), servername: HOST });
  const fp = s.getPeerX509Certificate()!.fingerprint256;
  s.destroy();
  return { fingerprint256: fp };
}
