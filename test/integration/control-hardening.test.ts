// The control plane and the catalog's secrets, attacked for real (issue 15: V1a, V1c, W4, W7):
// - a Contributor token cannot make the root platform dlopen() a library of its choosing (a .so
//   compiled here whose constructor writes a marker file: the marker never appears), and the
//   platform refuses to start with a module file someone other than root could have written;
// - an Owner row written straight into the catalog's api_tokens (plain SHA-256, as before) is no token;
// - /metrics wants a token, and its labels do not tell an unknown role from a wrong password;
// - threat baselines persist (PrincipalAnomaly does not fire again for a known role after a
//   restart), webhook secrets are sealed in the catalog and signed webhooks still verify;
// - and on a restart, what an older version left in the catalog is taken over: token hashes keyed
//   in place (the Owner token keeps working), clear webhook secrets sealed, key rows naming a
//   module by path mapped to its configured name or, when not configured, left Inaccessible.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { startTestPlatform, tempDir, until, type TestPlatform } from '../helpers/platform.js';
import { tryConnect } from '../helpers/clients.js';
import { SOFTHSM_MODULE, SOFTHSM_MODULE_NAME, SOFTHSM_MODULES } from '../helpers/softhsm.js';
import { Platform, type ClientConfig } from '../../src/app/platform.js';
import { callApi, type ApiTarget } from '../../src/cli/api-client.js';
import { loadPkcs11Modules } from '../../src/crypto/pkcs11-config.js';
import { verifyWebhookSignature } from '../../src/threat/notify/index.js';
import { ThreatRepo } from '../../src/catalog/threat-repo.js';

const SERVER = 'hardened';
const LEGACY = 'legacy-key';
const ADMIN = 'keeper';
const PASSWORD = 'Hard3ned-Passw0rd!';
const SECRET = 'webhook-secret-0123456789-abcdef';
const OLD_SECRET = 'old-clear-secret-0123456789-xyz';

let t: TestPlatform;
let work: string;
let evilSo: string;
let marker: string;
let hooks: http.Server;
let hookUrl: string;
const deliveries: { headers: http.IncomingHttpHeaders; body: string }[] = [];
let restarted: Platform | null = null;

interface Alert {
  id: string;
  type: string;
  principal: string | null;
  state: string;
}

function login(platform: Platform, user: string, password = PASSWORD): Promise<true | { code?: string; message: string }> {
  return tryConnect(
    new pg.Client({
      host: '127.0.0.1',
      port: platform.gateway.port,
      user: `${user}@${SERVER}`,
      password,
      database: 'postgres',
      ssl: { rejectUnauthorized: false },
    }),
  );
}

/** A shared library whose constructor writes `marker` (with the uid it ran as): loading it is running it. */
function compileEvilModule(dir: string, markerFile: string): string {
  const src = path.join(dir, 'evil.c');
  const so = path.join(dir, 'libevil-pkcs11.so');
  writeFileSync(
    src,
    `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void pwn(void) {
  FILE *f = fopen(${JSON.stringify(markerFile)}, "w");
  if (f) { fprintf(f, "ran as uid %d\\n", (int)getuid()); fclose(f); }
}
int C_GetFunctionList(void **list) { (void)list; return 5; }
`,
  );
  execFileSync('gcc', ['-shared', '-fPIC', '-o', so, src]);
  return so;
}

before(async () => {
  work = tempDir('pgw-hard-');
  marker = path.join(work, 'MARKER-module-ran-as-root');
  evilSo = compileEvilModule(work, marker);
  hooks = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hooks.address() as net.AddressInfo).port}/alerts`;
  t = await startTestPlatform({ pkcs11Modules: SOFTHSM_MODULES });
  for (const name of [SERVER, LEGACY]) {
    const r = await t.cli(['server', 'create', name, '--admin-user', ADMIN, '--admin-password', PASSWORD]);
    assert.equal(r.code, 0, r.stderr);
  }
  await t.api('PUT', `/servers/${SERVER}/firewallRules/loopback`, { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
  await until('the rule in the gateway', async () => t.platform.snapshots.snapshot.network.servers.get(SERVER)?.firewall.match('127.0.0.1'), 5000, 20);
});

after(async () => {
  await restarted?.stop().catch(() => undefined);
  await t?.stop().catch(() => undefined);
  await new Promise<void>((r) => hooks?.close(() => r()));
  if (work) rmSync(work, { recursive: true, force: true });
});

test('V1a: a Contributor naming a .so by path gets 400 and the root platform never loads it', async () => {
  const contributor = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Contributor', name: 'contrib' })).token;
  const body = { type: 'CustomerManaged', pkcs11Module: evilSo, tokenLabel: 'any', keyLabel: 'any', pin: '1234-abcd', createIfMissing: true };
  const r = await t.apiStatus('PUT', `/servers/${SERVER}/keys`, body, contributor);
  assert.equal(r.status, 400);
  const message = (r.body as { error: { message: string } }).error.message;
  assert.match(
    message,
    new RegExp(
      `^PKCS#11 module '${evilSo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' is not configured on this platform\\. Name one of the modules the operator configured \\(softhsm\\)`,
    ),
  );
  assert.match(message, /only with 'pgwarden up --pkcs11-module NAME=PATH'/);
  assert.equal(existsSync(marker), false, 'the module constructor ran in the platform');
  // An unknown name is refused the same way; the key did not change.
  const byName = await t.apiStatus('PUT', `/servers/${SERVER}/keys`, { ...body, pkcs11Module: 'evil' }, contributor);
  assert.equal(byName.status, 400);
  assert.match((byName.body as { error: { message: string } }).error.message, /^PKCS#11 module 'evil' is not configured on this platform/);
  assert.equal((await t.api<{ type: string }>('GET', `/servers/${SERVER}/keys`)).type, 'SystemManaged');
  // What may be named: the configured modules, by name only.
  assert.deepEqual(await t.api('GET', '/pkcs11Modules', undefined, contributor), { value: [{ name: SOFTHSM_MODULE_NAME }] });
  const listed = await t.cli(['server', 'key', 'modules', '-o', 'json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(JSON.parse(listed.stdout), [{ name: SOFTHSM_MODULE_NAME }]);
  const cli = await t.cli(['server', 'key', 'create', '--server', SERVER, '--pkcs11-module', evilSo, '--token', 'any', '--key-label', 'any'], {
    PGWARDEN_PKCS11_PIN: '1234-abcd',
  });
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /Error \(400 InvalidArgument\): PKCS#11 module '.*libevil-pkcs11\.so' is not configured on this platform/);
  assert.equal(existsSync(marker), false);
});

test('V1a: modules come only from root-owned files no one else can write; the platform refuses to start otherwise', async () => {
  // A directory only root can write (/tmp itself is writable by all, so nothing under it passes).
  const safe = mkdtempSync('/run/pgw-p11-');
  try {
    chmodSync(safe, 0o755);
    const copy = path.join(safe, 'libvendor.so');
    copyFileSync(SOFTHSM_MODULE, copy);
    chmodSync(copy, 0o644);
    assert.deepEqual([...loadPkcs11Modules({ flags: { vendor: copy }, files: [] })], [['vendor', copy]]);
    chmodSync(copy, 0o666);
    assert.throws(
      () => loadPkcs11Modules({ flags: { vendor: copy }, files: [] }),
      new RegExp(
        `^Pkcs11ConfigError: PKCS#11 module 'vendor': the PKCS#11 module ${copy} is refused: the file ${copy} is writable by group or others \\(mode 666\\)\\.$`,
      ),
    );
    chmodSync(copy, 0o644);
    chownSync(copy, 65534, 65534);
    assert.throws(() => loadPkcs11Modules({ flags: { vendor: copy }, files: [] }), /the file .*libvendor\.so is owned by uid 65534, not root/);
    chownSync(copy, 0, 0);
    // The config file: root-owned and not writable by others, or refused.
    const config = path.join(safe, 'pkcs11-modules.json');
    writeFileSync(config, JSON.stringify({ vendor: copy }), { mode: 0o644 });
    assert.deepEqual([...loadPkcs11Modules({ files: [config] })], [['vendor', copy]]);
    chmodSync(config, 0o666);
    assert.throws(
      () => loadPkcs11Modules({ files: [config] }),
      /^Pkcs11ConfigError: Refusing .*pkcs11-modules\.json: it is writable by group or others \(mode 666\); chmod 644 it\.$/,
    );
    assert.throws(() => loadPkcs11Modules({ flags: { evil: evilSo }, files: [] }), /the directory \/tmp is writable by group or others \(mode 1777\)/);
  } finally {
    rmSync(safe, { recursive: true, force: true });
  }
  // `up --pkcs11-module evil=<a file under /tmp>`: the platform does not start, nothing is loaded.
  const root = tempDir('pgw-hard-up-');
  const p = new Platform({ ...t.platform.options, dataDir: path.join(root, 'data'), pkcs11Modules: { evil: evilSo } });
  try {
    await assert.rejects(
      p.start(),
      /^Pkcs11ConfigError: PKCS#11 module 'evil': the PKCS#11 module .*libevil-pkcs11\.so is refused: the directory \/tmp is writable by group or others/,
    );
  } finally {
    await p.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
  assert.equal(existsSync(marker), false);
});

test('V1c: an Owner row written into the catalog without the platform key is no token', async () => {
  const id = randomBytes(6).toString('hex');
  const forged = `pgw_${id}_${randomBytes(32).toString('base64url')}`;
  await t.platform.db.query("insert into api_tokens (id, name, role, token_hash) values ($1, 'forged', 'Owner', $2)", [
    id,
    createHash('sha256').update(forged).digest(),
  ]);
  const r = await t.apiStatus('GET', '/tokens', undefined, forged);
  assert.equal(r.status, 401);
  assert.deepEqual(r.body, { error: { code: 'Unauthenticated', message: 'A valid API token is required (Authorization: Bearer <token>).' } });
  // Tokens the platform issues work, and the catalog holds neither them nor their plain hash.
  const reader = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Reader' })).token;
  assert.equal((await t.apiStatus('GET', '/me', undefined, reader)).status, 200);
  const { rows } = await t.platform.db.query<{ token_hash: Buffer }>('select token_hash from api_tokens where id = $1', [reader.split('_')[1]]);
  assert.notDeepEqual(rows[0]!.token_hash, createHash('sha256').update(reader).digest());
  const key = readFileSync(path.join(t.platform.paths.secretsDir, 'api-token-hmac.key'));
  assert.equal(key.length, 32);
  assert.equal(
    execFileSync('stat', ['-c', '%a %u', path.join(t.platform.paths.secretsDir, 'api-token-hmac.key')])
      .toString()
      .trim(),
    '600 0',
  );
  await t.platform.db.query('delete from api_tokens where id = $1', [id]);
});

test('W4: /metrics wants a token, and one auth-failed label covers unknown role and wrong password', async () => {
  const anonymous = await t.apiStatus('GET', '/metrics', undefined, '');
  assert.equal(anonymous.status, 401);
  assert.deepEqual(await login(t.platform, 'nosuchrole'), { code: '28P01', message: 'password authentication failed for user "nosuchrole"' });
  assert.deepEqual(await login(t.platform, ADMIN, 'Wrong-Passw0rd!'), { code: '28P01', message: `password authentication failed for user "${ADMIN}"` });
  const reader = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Reader' })).token;
  const metrics = await t.api<string>('GET', '/metrics', undefined, reader);
  const denied = metrics.split('\n').filter((l) => l.startsWith('pgwarden_gateway_denied_total{'));
  assert.deepEqual(denied, ['pgwarden_gateway_denied_total{reason="auth-failed"} 2']);
  assert.doesNotMatch(metrics, /role does not exist|wrong password/);
});

test('W7: one baseline row that cannot be stored does not cost the others', async () => {
  const repo = new ThreatRepo(t.platform.db);
  const now = Date.now();
  await assert.rejects(
    repo.saveBaselines([
      { server: SERVER, kind: 'principal', key: 'batch-probe', firstSeen: now, lastSeen: now },
      { server: SERVER, kind: 'country', key: 'broken\u0000row', firstSeen: Number.NaN, lastSeen: now },
    ]),
    /^BaselineWriteError: 1 of 2 threat baseline rows could not be stored \(hardened\/country: Invalid time value\)$/,
  );
  const { rows } = await t.platform.db.query<{ key: string }>("select key from threat_baselines where kind = 'principal' and key = 'batch-probe'");
  assert.equal(rows.length, 1);
  await t.platform.db.query("delete from threat_baselines where key = 'batch-probe'");
});

test('W7: webhook secrets are sealed in the catalog, never shown, and signed webhooks verify', async () => {
  const set = await t.api<Record<string, unknown>>('PATCH', `/servers/${SERVER}/securityAlertPolicy`, {
    state: 'Enabled',
    webhooks: [{ url: hookUrl, secret: SECRET }],
    detectors: { learningPeriodSeconds: 0 },
  });
  assert.doesNotMatch(JSON.stringify(set), new RegExp(SECRET));
  const { rows } = await t.platform.db.query<{ policy: string }>(
    'select p.policy::text as policy from security_alert_policies p join servers s on s.id = p.server_id where s.name = $1',
    [SERVER],
  );
  assert.doesNotMatch(rows[0]!.policy, new RegExp(SECRET));
  assert.match(rows[0]!.policy, /"secret": "sealed:v1:[A-Za-z0-9_-]+"/);
  assert.doesNotMatch(JSON.stringify(await t.api('GET', `/servers/${SERVER}/securityAlertPolicy`)), /sealed|secret/);
  await until('the policy in the snapshot', async () => t.platform.snapshots.snapshot.threat.get(SERVER)?.state === 'Enabled', 5000, 20);

  // The first login of the administrator after the (zero) learning period: PrincipalAnomaly.
  assert.equal(await login(t.platform, ADMIN), true);
  const hook = await until(
    'the webhook',
    async () => deliveries.find((d) => d.body.includes('PrincipalAnomaly') && d.body.includes(`"principal":"${ADMIN}"`)),
    10_000,
    50,
  );
  assert.equal(verifyWebhookSignature(SECRET, String(hook.headers['x-pgwarden-timestamp']), hook.body, String(hook.headers['x-pgwarden-signature'])), true);
  const alert = (await t.api<{ value: Alert[] }>('GET', `/servers/${SERVER}/alerts?type=PrincipalAnomaly`)).value.find((a) => a.principal === ADMIN)!;
  await t.api('POST', `/servers/${SERVER}/alerts/${alert.id}/resolve`);
});

test('W7 and migration: baselines persist across a restart; older catalog rows are taken over', async () => {
  // The baselines are in the catalog (the loopback "country" key holds the detectors' NUL).
  await t.platform.threat.flush();
  const stored = await t.platform.db.query<{ kind: string; key: string }>(
    'select b.kind, b.key from threat_baselines b join servers s on s.id = b.server_id where s.name = $1 order by 1, 2',
    [SERVER],
  );
  assert.deepEqual(stored.rows, [
    { kind: 'country', key: `${ADMIN}%00loopback` },
    { kind: 'principal', key: ADMIN },
  ]);

  // What an older version left: the Owner token's plain SHA-256 before migration 7, a clear
  // webhook secret, and key rows naming modules by path (one configured, one not).
  const db = t.platform.db;
  const owner = t.target.token;
  const ownerId = owner.split('_')[1]!;
  await db.query('delete from api_tokens where id <> $1', [ownerId]);
  await db.query('update api_tokens set token_hash = $2 where id = $1', [ownerId, createHash('sha256').update(owner).digest()]);
  await db.query('delete from schema_migrations where version = 7');
  await db.query(
    `update security_alert_policies p set policy = jsonb_set(p.policy, '{webhooks}', $2::jsonb) from servers s where s.id = p.server_id and s.name = $1`,
    [SERVER, JSON.stringify([{ url: hookUrl, secret: OLD_SECRET }])],
  );
  const ids = new Map((await db.query<{ id: number; name: string }>('select id, name from servers')).rows.map((r) => [r.name, r.id]));
  const keyRow = (module: string) => JSON.stringify({ module, tokenLabel: 'gone', keyLabel: 'gone', keyId: '00' });
  const putKey = (server: string, module: string) =>
    db.query(
      `insert into server_keys (server_id, type, kek_version, pkcs11, status) values ($1, 'CustomerManaged', 1, $2, 'Valid')
     on conflict (server_id) do update set type = 'CustomerManaged', pkcs11 = excluded.pkcs11`,
      [ids.get(server), module],
    );
  await putKey(LEGACY, keyRow(evilSo));

  const options = t.platform.options;
  await t.platform.stop();
  restarted = new Platform(options);
  await restarted.start();
  const cfg = JSON.parse(readFileSync(restarted.paths.clientConfig, 'utf8')) as ClientConfig;
  assert.equal(cfg.token, owner, 'the Owner token still works after its hash was keyed in place');
  const target: ApiTarget = { url: cfg.apiUrl, token: owner, ca: readFileSync(cfg.caFile, 'utf8') };
  const api = <T>(method: string, route: string, body?: unknown) => callApi(target, method, route, body) as Promise<T>;

  // The key row naming an unconfigured module by path: Inaccessible, saying why; never loaded.
  assert.equal(existsSync(marker), false, 'the platform loaded a module path found in the catalog');
  const legacy = await api<{ status: string; reason: string }>('GET', `/servers/${LEGACY}/keys`);
  assert.equal(legacy.status, 'Unavailable');
  assert.match(
    legacy.reason,
    /^The PKCS#11 module '.*libevil-pkcs11\.so' of this key is not configured on this platform: the operator configures it with 'pgwarden up --pkcs11-module NAME=PATH' \(a root-owned module file\), then 'pgwarden server key revalidate' brings the server back\.$/,
  );
  assert.equal((await api<{ state: string }>('GET', `/servers/${LEGACY}`)).state, 'Inaccessible');

  // The clear secret was sealed by the migration, and still signs.
  const policy = await restarted.db.query<{ policy: string }>(
    'select p.policy::text as policy from security_alert_policies p join servers s on s.id = p.server_id where s.name = $1',
    [SERVER],
  );
  assert.doesNotMatch(policy.rows[0]!.policy, new RegExp(OLD_SECRET));
  assert.match(policy.rows[0]!.policy, /"secret": "sealed:v1:/);

  // The administrator is known from before the restart: no new PrincipalAnomaly. A role never
  // seen gets one (its webhook proves the detector ran after the administrator's login).
  await until('the rule in the gateway', async () => restarted!.snapshots.snapshot.network.servers.get(SERVER)?.firewall.match('127.0.0.1'), 5000, 20);
  assert.equal(await login(restarted, ADMIN), true);
  const created = await psqlAs(restarted, `create role carol login password '${PASSWORD}'`);
  assert.equal(created, true);
  assert.equal(await login(restarted, 'carol'), true);
  const hook = await until("carol's webhook", async () => deliveries.find((d) => d.body.includes('"principal":"carol"')), 10_000, 50);
  assert.equal(verifyWebhookSignature(OLD_SECRET, String(hook.headers['x-pgwarden-timestamp']), hook.body, String(hook.headers['x-pgwarden-signature'])), true);
  const anomalies = (await api<{ value: Alert[] }>('GET', `/servers/${SERVER}/alerts?type=PrincipalAnomaly`)).value;
  assert.deepEqual(
    anomalies.filter((a) => a.principal === ADMIN).map((a) => a.state),
    ['Resolved'],
    'PrincipalAnomaly fired again for a known role',
  );
});

test("V1a migration: a key row naming a configured module by its path takes the module's name on start", async () => {
  assert.ok(restarted, 'runs after the restart above');
  const db = restarted.db;
  const id = (await db.query<{ id: number }>('select id from servers where name = $1', [LEGACY])).rows[0]!.id;
  await db.query("update servers set state = 'Ready' where id = $1", [id]);
  await db.query("update server_keys set pkcs11 = jsonb_set(pkcs11, '{module}', to_jsonb($2::text)) where server_id = $1", [id, SOFTHSM_MODULE]);
  const options = restarted.options;
  await restarted.stop();
  restarted = new Platform(options);
  await restarted.start();
  const row = await restarted.db.query<{ module: string }>("select pkcs11->>'module' as module from server_keys where server_id = $1", [id]);
  assert.equal(row.rows[0]!.module, SOFTHSM_MODULE_NAME);
  assert.equal(existsSync(marker), false);
});

/** A statement as the server's administrator through the gateway. */
async function psqlAs(platform: Platform, sql: string): Promise<true | string> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: platform.gateway.port,
    user: `${ADMIN}@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
  });
  try {
    await c.connect();
    await c.query(sql);
    return true;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}
