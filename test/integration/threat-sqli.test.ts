// SQL-injection detection end to end (issue 20): injections sent by a real client through the
// gateway raise SqlInjection alerts that say where they came from (address, application,
// database); `--sqli-allow FINGERPRINT` silences one statement shape; learned application shapes
// catch an injection no single rule sees, and survive a platform restart; `pgwarden threat
// sql-check` judges statements offline (stdin, JSON lines and plain lines) and with --server;
// the API route behind the console's "test a statement" box.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { Platform, type ClientConfig } from '../../src/app/platform.js';
import { callApi, ApiError } from '../../src/cli/api-client.js';
import { allowLoopback, auditEvents, cliPath, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';

let t: TestPlatform;
let restarted: Platform | null = null;
let ca: string;
const SERVER = 'shop';
const ADMIN = 'shopadmin';
const PASSWORD = 'Sqli-Passw0rd!2024';

interface Alert {
  id: string;
  type: string;
  count: number;
  sourceAddress: string | null;
  principal: string | null;
  description: string;
  evidence: { statement: string; shapes: string[]; fingerprint: string; applicationName: string; databaseName: string | null; clientAddress: string | null };
}
interface Verdict {
  verdict: 'SqlInjection' | 'none';
  shapes: string[];
  detail: string;
  fingerprint: string;
}

const platform = () => restarted ?? t.platform;
/** The API of the running platform (a restarted one listens on a new port). */
async function api<T>(method: string, route: string, body?: unknown): Promise<T> {
  const cfg = JSON.parse(readFileSync(platform().paths.clientConfig, 'utf8')) as ClientConfig;
  return callApi<T>({ url: cfg.apiUrl, token: cfg.token, ca: readFileSync(cfg.caFile, 'utf8') }, method, route, body);
}
const alerts = async () => (await t.api<{ value: Alert[] }>('GET', `/servers/${SERVER}/alerts?type=SqlInjection`)).value;

async function session(application: string, database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: platform().gateway.port,
    user: `${ADMIN}@${SERVER}`,
    password: PASSWORD,
    database,
    application_name: application,
    ssl: { ca, servername: `${SERVER}.pgwarden.localhost` },
  });
  await c.connect();
  return c;
}

async function run(application: string, statements: readonly string[], database = 'postgres'): Promise<void> {
  const c = await session(application, database);
  try {
    for (const s of statements) await c.query(s);
  } finally {
    await c.end();
  }
}

/** Runs the CLI with `input` on stdin. */
function sqlCheck(args: readonly string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function policyIs(
  check: (p: { disabledAlerts: readonly string[]; state: string; detectors: { learningPeriodSeconds: number } }) => boolean,
): Promise<void> {
  await until(
    'the policy in the gateway snapshot',
    async () => {
      const p = platform().snapshots.snapshot.threat.get(SERVER);
      return p !== undefined && check(p);
    },
    10_000,
    50,
  );
}

before(async () => {
  t = await startTestPlatform();
  ca = readFileSync(t.platform.paths.caCert, 'utf8');
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', ADMIN, '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  // Learning runs for an hour: the applications' shapes are learned; rules still raise alerts.
  const p = await t.cli([
    'server',
    'threat-protection',
    'update',
    '--server',
    SERVER,
    '--state',
    'Enabled',
    '--learning-period-seconds',
    '3600',
    '--auto-protection',
    'Disabled',
  ]);
  assert.equal(p.code, 0, p.stderr);
  await policyIs((x) => x.state === 'Enabled');
  await run('setup', ['create table items (id int, name text, price numeric)', 'create database orders']);
  await run('setup', ['create table items (id int, name text, price numeric)'], 'orders');
});

after(async () => {
  if (restarted) await restarted.stop().catch(() => undefined);
  await t?.stop();
});

test('a boolean-blind probe raises SqlInjection with the client address, application and database', async () => {
  await run(
    'shop-web',
    ["select id, name from items where name = 'lamp'", "select id, name from items where name = '' AND substr(current_user,1,1)='p'"],
    'orders',
  );
  const a = await until('the SqlInjection alert', async () => (await alerts()).find((x) => x.evidence.applicationName === 'shop-web'), 10_000, 50);
  assert.equal(a.sourceAddress, '127.0.0.1');
  assert.equal(a.principal, ADMIN);
  assert.equal(a.evidence.databaseName, 'orders');
  assert.equal(a.evidence.clientAddress, '127.0.0.1');
  assert.deepEqual(a.evidence.shapes, ['boolean-probe']);
  assert.match(a.evidence.fingerprint, /^[0-9a-f]{16}$/);
  assert.equal(a.evidence.statement.includes('lamp'), false);
  assert.equal(
    a.description,
    `A statement from application "shop-web" running as "${ADMIN}" from 127.0.0.1 on database "orders" looks like SQL injection: ${'a condition that does not depend on the row: constants or system values (current_user, version(), catalog subqueries) compared (boolean-blind probe)'}`,
  );
});

test('--sqli-allow FINGERPRINT silences one statement shape, not the detector', async () => {
  const probe = "select id from items where name = '' OR 'x'='x'";
  await run('reports', [probe]);
  const first = await until('the alert to silence', async () => (await alerts()).find((x) => x.evidence.applicationName === 'reports'), 10_000, 50);
  const fp = first.evidence.fingerprint;
  const u = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--sqli-allow', fp, '--output', 'json']);
  assert.equal(u.code, 0, u.stderr);
  assert.deepEqual((JSON.parse(u.stdout) as { disabledAlerts: string[] }).disabledAlerts, [`SqlInjection:${fp}`]);
  await policyIs((p) => p.disabledAlerts.includes(`SqlInjection:${fp}`));
  // The silenced statement again, then another injection from the same session.
  await run('reports', [probe, 'select id from items where price < 1 UNION SELECT NULL']);
  const other = await until(
    'the other injection',
    async () => (await alerts()).find((x) => x.evidence.applicationName === 'reports' && x.evidence.fingerprint !== fp),
    10_000,
    50,
  );
  assert.deepEqual(other.evidence.shapes, ['union-extraction']);
  await platform().threat.flush();
  const again = (await alerts()).find((x) => x.id === first.id)!;
  assert.equal(again.count, 1, 'the allowed statement shape added nothing');
  // A malformed fingerprint is refused by the CLI and by the API.
  const bad = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--sqli-allow', 'not-a-fingerprint']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /'not-a-fingerprint' is not a statement fingerprint/);
  const api = await t.apiStatus('PATCH', `/servers/${SERVER}/securityAlertPolicy`, { disabledAlerts: ['SqlInjection:xyz'] });
  assert.equal(api.status, 400);
});

test('pgwarden threat sql-check without a platform: JSON lines and plain lines in, one JSON verdict per line out', async () => {
  const input =
    [
      JSON.stringify({ sql: "SELECT * FROM users WHERE name = '' OR 1=1--'" }),
      'SELECT abalance FROM pgbench_accounts WHERE aid = 48213',
      "select * from t where x = 'a",
      JSON.stringify({ sql: "SELECT * FROM products WHERE name ILIKE '%' OR '1'='1%'" }),
    ].join('\n') + '\n';
  const r = await sqlCheck(['--data-dir', '/nonexistent/pgwarden', 'threat', 'sql-check', '--output', 'json'], input);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  const out = lines.map((l) => JSON.parse(l) as Verdict);
  for (const v of out) assert.deepEqual(Object.keys(v), ['verdict', 'shapes', 'detail', 'fingerprint']);
  assert.deepEqual(
    out.map((v) => v.verdict),
    ['SqlInjection', 'none', 'none', 'SqlInjection'],
  );
  assert.deepEqual(out[0]!.shapes, ['tautology', 'comment-truncation']);
  assert.equal(out[1]!.detail, 'no injection shape');
  assert.equal(
    out[2]!.detail,
    'the statement does not parse: the server answers it with a syntax error (42601), which the SqlInjectionVulnerability detector counts',
  );
  assert.deepEqual(out[3]!.shapes, ['boolean-probe']);
  const needsServer = await sqlCheck(['threat', 'sql-check', '--application', 'web'], 'select 1\n');
  assert.equal(needsServer.code, 1);
  assert.equal(needsServer.stderr, 'Error: --application and --role need --server: learned shapes belong to a server.\n');
});

test('learned shapes: an injection no rule sees is caught; sql-check --server and the API explain it; they survive a restart', async () => {
  const learnedSql = "select id, name from items where name = 'lamp' and price < 40";
  // Only extends the learned statement: no single rule fires on it.
  const injected = "select id, name from items where name = '' OR name LIKE '%' and price < 40";
  const offline = await sqlCheck(['threat', 'sql-check'], `${injected}\n`);
  assert.equal((JSON.parse(offline.stdout) as Verdict).verdict, 'none', 'the rules alone do not see it');
  await run('billing', [learnedSql, "select id, name from items where name = 'desk' and price < 99"]);
  await platform().threat.flush();
  // The learning period ends.
  const end = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--learning-period-seconds', '0']);
  assert.equal(end.code, 0, end.stderr);
  await policyIs((p) => p.detectors.learningPeriodSeconds === 0);
  await run('billing', [learnedSql, injected]);
  const a = await until('the learned-shape alert', async () => (await alerts()).find((x) => x.evidence.applicationName === 'billing'), 10_000, 50);
  assert.deepEqual(a.evidence.shapes, ['learned-shape']);
  assert.equal(a.sourceAddress, '127.0.0.1');

  const expectVerdicts = async (where: string) => {
    const cli = await sqlCheck(
      ['--data-dir', t.dataDir, 'threat', 'sql-check', '--server', SERVER, '--application', 'billing'],
      `${learnedSql}\n${JSON.stringify({ sql: injected })}\n`,
    );
    assert.equal(cli.code, 0, cli.stderr);
    const out = cli.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Verdict);
    assert.deepEqual(
      out.map((v) => [v.verdict, v.shapes]),
      [
        ['none', []],
        ['SqlInjection', ['learned-shape']],
      ],
      where,
    );
    assert.match(
      out[1]!.detail,
      /^one of the application's learned statements with extra conditions, a UNION or a comment where a literal used to be \(learned shape [0-9a-f]{16}\)$/,
    );
    assert.equal(out[1]!.fingerprint, a.evidence.fingerprint);
    const viaApi = await api<{ value: Verdict[] }>('POST', `/servers/${SERVER}/sqlCheck`, { statements: [{ sql: injected }], application: 'billing' });
    assert.deepEqual(viaApi.value[0]!.shapes, ['learned-shape'], where);
    // Another application did not learn this statement.
    const other = await api<{ value: Verdict[] }>('POST', `/servers/${SERVER}/sqlCheck`, { statements: [{ sql: injected }], application: 'setup' });
    assert.equal(other.value[0]!.verdict, 'none', where);
  };
  await expectVerdicts('before the restart');

  const options = t.platform.options;
  await t.platform.stop();
  restarted = new Platform(options);
  await restarted.start();
  await expectVerdicts('after the restart');
  const missing = await api('POST', '/servers/nope/sqlCheck', { statements: [{ sql: 'select 1' }] }).then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(missing instanceof ApiError);
  assert.equal(missing.status, 404);
  assert.equal(missing.message, "Server 'nope' was not found.");
});

test('a session the SQL-injection watch cannot follow (bytes that cannot be framed) is ended, and the log says so', async () => {
  // The attack: blind the detector with a message it cannot frame, then go on unwatched.
  const app = 'sqli-watch-garbage';
  const c = await session(app);
  const failed = new Promise<Error & { code?: string }>((resolve) => c.once('error', resolve));
  (c as unknown as { connection: { stream: { write(b: Buffer): void } } }).connection.stream.write(Buffer.from([0x51, 0, 0, 0, 2]));
  const err = await failed;
  c.end().catch(() => undefined);
  // Statement audit (on by default) and the watch both stop; the audit, first in line, says why.
  assert.equal(err.code, '58030');
  assert.equal(err.message, 'Statement audit stopped for this session, so the session was ended.');
  const stopped = await until(
    'the threat.watch-stopped event',
    async () =>
      auditEvents<{ type: string; applicationName?: string; reason?: string }>(t).find((e) => e.type === 'threat.watch-stopped' && e.applicationName === app),
    15_000,
    100,
  );
  assert.match(stopped.reason ?? '', /invalid message length 2|framing error: message type 0x51 with length 2/);
  assert.ok(auditEvents<{ type: string; applicationName?: string }>(t).some((e) => e.type === 'audit.tap-stopped' && e.applicationName === app));
});
