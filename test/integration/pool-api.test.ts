// Pooling in the control plane (issue 18): the pool settings through the API and the CLI, who may
// change them, the audit record of a change, GET /servers/{name}/pool, `server pool show` and the
// pool metrics. The gateway's pools themselves are tested with the gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { auditEvents, until, startTestPlatform, type TestPlatform } from '../helpers/platform.js';

let t: TestPlatform;
const SERVER = 'pool-1';

before(async () => {
  t = await startTestPlatform();
  const created = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', 'Str0ng-Passw0rd!']);
  assert.equal(created.code, 0, created.stderr);
});
after(async () => {
  await t?.stop();
});

interface ServerBody {
  poolMode: string;
  poolSize: number;
}

async function token(role: string): Promise<string> {
  const r = await t.cli(['token', 'create', '--role', role]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

function scrape(): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(`${t.target.url}/metrics`, { ca: t.target.ca, headers: { authorization: `Bearer ${t.target.token}` } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('a new server does not pool: poolMode none, poolSize 20', async () => {
  const s = await t.api<ServerBody>('GET', `/servers/${SERVER}`);
  assert.equal(s.poolMode, 'none');
  assert.equal(s.poolSize, 20);
  const shown = await t.cli(['server', 'show', SERVER]);
  assert.match(shown.stdout, /^poolMode\s+none$/m);
  assert.match(shown.stdout, /^poolSize\s+20$/m);
  const list = await t.cli(['server', 'list']);
  assert.match(list.stdout, /^name\s+state.*poolMode\s+poolSize/m);
});

test('PATCH sets poolMode and poolSize, GET returns them, and the change is audited with old and new values', async () => {
  const patched = await t.api<ServerBody>('PATCH', `/servers/${SERVER}`, { poolMode: 'transaction', poolSize: 5 });
  assert.deepEqual([patched.poolMode, patched.poolSize], ['transaction', 5]);
  const got = await t.api<ServerBody>('GET', `/servers/${SERVER}`);
  assert.deepEqual([got.poolMode, got.poolSize], ['transaction', 5]);

  const event = await until(
    'the server.update admin action with the pool changes',
    async () =>
      auditEvents(t).find((e) => e.type === 'admin.action' && e.action === 'server.update' && e.target === `/servers/${SERVER}` && e.outcome === 'success'),
    10_000,
    50,
  );
  const details = event.details as { changes: unknown; status: number; method: string };
  assert.deepEqual(details.changes, { poolMode: { old: 'none', new: 'transaction' }, poolSize: { old: 20, new: 5 } });
  assert.equal(details.method, 'PATCH');
  assert.equal(details.status, 200);
});

test('bad pool values get the validation error and change nothing', async () => {
  await t.api('PATCH', `/servers/${SERVER}`, { poolMode: 'session', poolSize: 7 });
  const cases: [unknown, string][] = [
    [{ poolMode: 'statement' }, 'body/poolMode must be equal to one of the allowed values'],
    [{ poolMode: 'transaction', poolSize: 0 }, 'body/poolSize must be >= 1'],
    [{ poolSize: -1 }, 'body/poolSize must be >= 1'],
    [{ poolSize: 10001 }, 'body/poolSize must be <= 10000'],
    [{ poolSize: 2.5 }, 'body/poolSize must be integer'],
    [{ poolSize: '20' }, 'body/poolSize must be integer'],
    [{ poolSize: null }, 'body/poolSize must be integer'],
  ];
  for (const [body, message] of cases) {
    const r = await t.apiStatus('PATCH', `/servers/${SERVER}`, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.deepEqual(r.body, { error: { code: 'InvalidArgument', message } }, JSON.stringify(body));
  }
  const s = await t.api<ServerBody>('GET', `/servers/${SERVER}`);
  assert.deepEqual([s.poolMode, s.poolSize], ['session', 7]);

  const missing = await t.apiStatus('PATCH', '/servers/no-such-server', { poolMode: 'session' });
  assert.deepEqual(missing, { status: 404, body: { error: { code: 'NotFound', message: "Server 'no-such-server' was not found." } } });
});

test('a Reader or a SecurityAdmin cannot change the pool settings, a Contributor can; a Reader reads the pools', async () => {
  await t.api('PATCH', `/servers/${SERVER}`, { poolMode: 'none', poolSize: 20 });
  for (const role of ['Reader', 'SecurityAdmin']) {
    const r = await t.apiStatus('PATCH', `/servers/${SERVER}`, { poolMode: 'session' }, await token(role));
    assert.deepEqual(r, { status: 403, body: { error: { code: 'Forbidden', message: `The ${role} role is not allowed to perform this operation.` } } });
  }
  const s = await t.api<ServerBody>('GET', `/servers/${SERVER}`);
  assert.equal(s.poolMode, 'none');

  const contributor = await t.apiStatus('PATCH', `/servers/${SERVER}`, { poolMode: 'session' }, await token('Contributor'));
  assert.equal(contributor.status, 200);
  assert.equal((contributor.body as ServerBody).poolMode, 'session');

  const read = await t.apiStatus('GET', `/servers/${SERVER}/pool`, undefined, await token('Reader'));
  assert.equal(read.status, 200);
  const anonymous = await t.apiStatus('GET', `/servers/${SERVER}/pool`, undefined, 'not-a-token');
  assert.equal(anonymous.status, 401);
});

test('GET /servers/{name}/pool: the settings and the pools (none before a client connects); 404 for no server', async () => {
  await t.api('PATCH', `/servers/${SERVER}`, { poolMode: 'session', poolSize: 3 });
  const pool = await t.api('GET', `/servers/${SERVER}/pool`);
  assert.deepEqual(pool, { server: SERVER, poolMode: 'session', poolSize: 3, pools: [] });
  const missing = await t.apiStatus('GET', '/servers/no-such-server/pool');
  assert.deepEqual(missing, { status: 404, body: { error: { code: 'NotFound', message: "Server 'no-such-server' was not found." } } });
});

test('CLI: server update --pool-mode/--pool-size, server pool show as a table and as JSON', async () => {
  const upd = await t.cli(['server', 'update', SERVER, '--pool-mode', 'transaction', '--pool-size', '12', '-o', 'json']);
  assert.equal(upd.code, 0, upd.stderr);
  const s = JSON.parse(upd.stdout) as ServerBody;
  assert.deepEqual([s.poolMode, s.poolSize], ['transaction', 12]);

  for (const [args, message] of [
    [['--pool-size', '0'], "error: option '--pool-size <n>' argument '0' is invalid. The pool size must be a whole number from 1 to 10000 (got '0')."],
    [['--pool-size', 'abc'], "error: option '--pool-size <n>' argument 'abc' is invalid. The pool size must be a whole number from 1 to 10000 (got 'abc')."],
    [['--pool-mode', 'statement'], "error: option '--pool-mode <mode>' argument 'statement' is invalid. Allowed choices are none, session, transaction."],
  ] as const) {
    const bad = await t.cli(['server', 'update', SERVER, ...args]);
    assert.equal(bad.code, 1, args.join(' '));
    assert.equal(bad.stderr.split('\n')[0], message);
  }
  const unchanged = await t.api<ServerBody>('GET', `/servers/${SERVER}`);
  assert.deepEqual([unchanged.poolMode, unchanged.poolSize], ['transaction', 12]);

  const table = await t.cli(['server', 'pool', 'show', SERVER]);
  assert.equal(table.code, 0, table.stderr);
  assert.equal(table.stdout, `server    ${SERVER}\npoolMode  transaction\npoolSize  12\n\n(none)\n`);

  const json = await t.cli(['server', 'pool', 'show', SERVER, '-o', 'json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), { server: SERVER, poolMode: 'transaction', poolSize: 12, pools: [] });

  const missing = await t.cli(['server', 'pool', 'show', 'no-such-server']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "Error (404 NotFound): Server 'no-such-server' was not found.\n");
});

test('/metrics has the pool metrics, per server', async () => {
  const r = await scrape();
  assert.equal(r.status, 200);
  for (const name of ['pgwarden_pool_clients', 'pgwarden_pool_clients_waiting', 'pgwarden_pool_server_connections']) {
    assert.match(r.body, new RegExp(`^# TYPE ${name} gauge$`, 'm'));
  }
  for (const name of ['pgwarden_pool_waits_total', 'pgwarden_pool_wait_seconds_total', 'pgwarden_pool_server_connections_opened_total']) {
    assert.match(r.body, new RegExp(`^# TYPE ${name} counter$`, 'm'));
  }
  assert.match(r.body, new RegExp(`^pgwarden_pool_clients\\{server="${SERVER}"\\} 0$`, 'm'));
  for (const state of ['active', 'idle', 'opening']) {
    assert.match(r.body, new RegExp(`^pgwarden_pool_server_connections\\{server="${SERVER}",state="${state}"\\} 0$`, 'm'));
  }
  assert.match(r.body, new RegExp(`^pgwarden_pool_waits_total\\{server="${SERVER}"\\} 0$`, 'm'));
});
