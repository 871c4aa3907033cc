// Token login through a real OpenID Connect provider (oidc-provider, client-credentials grant,
// JWT access tokens, rotating keys): principals bound by object id or group, every rejection
// with SPEC.md's one text, and the identity administrator switch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { auditEvents, allowLoopback, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { startOidcProvider, rsaPublicKeyPem, type OidcProviderHandle } from '../../support/oidc.js';
import { conninfo, psql } from '../helpers/clients.js';
import { clientErrors } from '../../src/pgwire/client-errors.js';
import { SignJWT, base64url } from 'jose';

let t: TestPlatform;
let idp: OidcProviderHandle;
let ca: string;
const AUD = 'api://pgwarden-test';
const SERVER = 'id1';
const PASSWORD = 'Ident1ty-Passw0rd!';
const BAD = { code: '28000', message: clientErrors.badToken.message };

before(async () => {
  idp = await startOidcProvider({
    clients: [
      { clientId: 'app', oid: 'oid-app', groups: ['group-a'] },
      { clientId: 'other', oid: 'oid-other', groups: [] },
      { clientId: 'boss', oid: 'oid-boss', groups: [] },
    ],
  });
  t = await startTestPlatform();
  assert.equal((await t.cli(['server', 'create', SERVER, '--admin-user', 'owner1', '--admin-password', PASSWORD])).code, 0);
  await allowLoopback(t, SERVER);
  // These tests refuse many tokens from one address on purpose: no throttling here (it has its
  // own tests in threat.test.ts).
  const off = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--auto-protection', 'Disabled']);
  assert.equal(off.code, 0, off.stderr);
  ca = readFileSync(t.platform.paths.caCert, 'utf8');
  const caFile = `${t.dataDir}/../idp-ca.pem`;
  (await import('node:fs')).writeFileSync(caFile, idp.caPem);
  const set = await t.cli([
    'server',
    'identity-admin',
    'set',
    '--server',
    SERVER,
    '--issuer',
    idp.issuer,
    '--audience',
    AUD,
    '--login',
    'aad_admin',
    '--object-id',
    'oid-boss',
    '--type',
    'servicePrincipal',
    '--ca-file',
    caFile,
  ]);
  assert.equal(set.code, 0, set.stderr);
  for (const [role, oid, type] of [
    ['app_user', 'oid-app', 'user'],
    ['team', 'group-a', 'group'],
    ['other_user', 'oid-other', 'user'],
  ]) {
    const r = await t.cli(['server', 'identity-principal', 'create', '--server', SERVER, '--role', role!, '--object-id', oid!, '--type', type!]);
    assert.equal(r.code, 0, r.stderr);
  }
  await waitForIdentity(() => (t.platform.snapshots.snapshot.identity.get(SERVER)?.principals.size ?? 0) === 4);
});
after(async () => {
  await t?.stop();
  await idp?.close();
});

async function waitForIdentity(cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.ok(cond(), 'catalog change reached the gateway');
}

async function loginAs(user: string, password: string, opts: { ssl?: boolean } = {}): Promise<string | { code?: string; message: string }> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: t.platform.gateway.port,
    user: `${user}@${SERVER}`,
    password,
    database: 'postgres',
    ssl: opts.ssl === false ? false : { ca, servername: `${SERVER}.pgwarden.localhost` },
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.query('select current_user as u')).rows[0].u as string;
  } catch (err) {
    const e = err as Error & { code?: string };
    return { code: e.code, message: e.message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({ iss: idp.issuer, aud: AUD, iat: now(), exp: now() + 300, sub: 'app', oid: 'oid-app', ...extra });

test('a valid token logs in as the bound role; psql with PGPASSWORD=<token> works; the event names the identity', async () => {
  const token = await idp.issueToken({ clientId: 'app', audience: AUD });
  assert.equal(await loginAs('app_user', token), 'app_user');
  const r = await psql(
    conninfo(t, {
      host: `${SERVER}.pgwarden.localhost`,
      user: 'app_user',
      sslmode: 'verify-full',
      sslrootcert: t.platform.paths.caCert,
      application_name: 'token-psql',
    }),
    token,
    ['-c', 'select current_user'],
  );
  assert.equal(r.stdout, 'app_user', r.stderr);
  const ev = await until(
    'the token login in the audit log',
    async () => auditEvents(t).find((e) => e.type === 'auth.succeeded' && e.applicationName === 'token-psql'),
    10_000,
    50,
  );
  assert.equal(ev.method, 'token');
  assert.equal(ev.objectId, 'oid-app');
});

test('the identity administrator logs in with its own token and administers the server', async () => {
  const token = await idp.issueToken({ clientId: 'boss', audience: AUD, alg: 'ES256' });
  const c = new pg.Client({
    host: '127.0.0.1',
    port: t.platform.gateway.port,
    user: `aad_admin@${SERVER}`,
    password: token,
    database: 'postgres',
    ssl: { ca, servername: `${SERVER}.pgwarden.localhost` },
  });
  await c.connect();
  const { rows } = await c.query(
    "select rolsuper, rolcreaterole, pg_has_role('aad_admin', 'pgwarden_admin', 'member') as m from pg_roles where rolname = current_user",
  );
  assert.deepEqual(rows[0], { rolsuper: false, rolcreaterole: true, m: true });
  await c.end();
});

test('group principals log in through the groups claim', async () => {
  const token = await idp.issueToken({ clientId: 'app', audience: AUD });
  assert.equal(await loginAs('team', token), 'team');
  const outsider = await idp.issueToken({ clientId: 'other', audience: AUD });
  assert.deepEqual(await loginAs('team', outsider), BAD);
});

test('each bad token is refused with the SPEC text and its own reason in the audit event', async () => {
  const rsaPem = rsaPublicKeyPem(idp.publicKeys().rsa);
  const valid = await idp.issueToken({ clientId: 'app', audience: AUD });
  const [h, p, s] = valid.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const cases: [string, Promise<string> | string, RegExp][] = [
    ['expired', idp.signWithProviderKey(claims({ iat: now() - 900, exp: now() - 600 })), /expired/],
    ['not yet valid', idp.signWithProviderKey(claims({ nbf: now() + 600 })), /not-yet-valid/],
    ['wrong audience', idp.issueToken({ clientId: 'app', audience: 'api://someone-else' }), /audience/],
    ['wrong issuer', idp.signWithProviderKey(claims({ iss: 'https://evil.example' })), /issuer/],
    ['unknown kid', idp.signWithProviderKey(claims(), { kid: 'no-such-key' }), /unknown-kid|issuer-unavailable/],
    ['alg none', `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims()))}.`, /algorithm|malformed/],
    ['HS256 with the RSA public key', new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(rsaPem)), /algorithm/],
    ['tampered payload', `${h}.${Buffer.from(JSON.stringify({ ...payload, oid: 'oid-other' })).toString('base64url')}.${s}`, /signature/],
    ['token of another principal', idp.issueToken({ clientId: 'other', audience: AUD }), /belongs to oid-other/],
    ['oversized', 'x'.repeat(20_000), /too large/],
  ];
  for (const [name, tokenP, reason] of cases) {
    const token = await tokenP;
    const app = `bad-${name.replace(/\W+/g, '-')}`;
    const c = new pg.Client({
      host: '127.0.0.1',
      port: t.platform.gateway.port,
      user: `app_user@${SERVER}`,
      password: token,
      database: 'postgres',
      application_name: app,
      ssl: { ca, servername: `${SERVER}.pgwarden.localhost` },
    });
    c.on('error', () => undefined);
    await assert.rejects(c.connect(), (e: Error & { code?: string }) => {
      assert.deepEqual({ code: e.code, message: e.message }, BAD, name);
      return true;
    });
    // The store writes at once but not synchronously: wait for the record (bounded).
    const ev = await until(
      `audit event for ${name}`,
      async () => auditEvents(t).find((e) => e.type === 'auth.failed' && e.applicationName === app),
      5000,
      50,
    ).catch(() => undefined);
    assert.ok(ev, `audit event for ${name}`);
    assert.equal(ev.method, 'token');
    assert.match(String(ev.reason), reason, name);
    assert.doesNotMatch(String(ev.reason), /eyJ/, 'the token itself is never logged');
  }
});

test('a token over a plaintext connection is refused (enforcement off)', async () => {
  assert.equal((await t.cli(['server', 'update', SERVER, '--ssl-enforcement', 'Disabled'])).code, 0);
  await waitForIdentity(() => t.platform.snapshots.snapshot.servers.get(SERVER)?.sslEnforcement === 'Disabled');
  const token = await idp.issueToken({ clientId: 'app', audience: AUD });
  assert.deepEqual(await loginAs('app_user', token, { ssl: false }), BAD);
  assert.equal(await loginAs('owner1', PASSWORD, { ssl: false }), 'owner1'); // passwords may still go plaintext there
  assert.equal((await t.cli(['server', 'update', SERVER, '--ssl-enforcement', 'Enabled'])).code, 0);
  await waitForIdentity(() => t.platform.snapshots.snapshot.servers.get(SERVER)?.sslEnforcement === 'Enabled');
});

test('key rotation at the provider: new tokens work without restarting anything; old kids are refused', async () => {
  const old = await idp.issueToken({ clientId: 'app', audience: AUD });
  assert.equal(await loginAs('app_user', old), 'app_user');
  await idp.rotateKeys();
  await new Promise((r) => setTimeout(r, 10_500)); // past the JWKS refresh rate limit
  const fresh = await idp.issueToken({ clientId: 'app', audience: AUD });
  assert.equal(await loginAs('app_user', fresh), 'app_user');
  assert.deepEqual(await loginAs('app_user', old), BAD);
});

test('a deleted principal stops working at once', async () => {
  const token = await idp.issueToken({ clientId: 'other', audience: AUD });
  assert.equal(await loginAs('other_user', token), 'other_user');
  assert.equal((await t.cli(['server', 'identity-principal', 'delete', '--server', SERVER, '--role', 'other_user'])).code, 0);
  await waitForIdentity(() => !t.platform.snapshots.snapshot.identity.get(SERVER)?.principals.has('other_user'));
  const after = await loginAs('other_user', token);
  assert.notEqual(after, 'other_user');
});

test('removing the identity administrator disables token logins; password logins go on until switched off', async () => {
  const token = await idp.issueToken({ clientId: 'app', audience: AUD });
  assert.equal((await t.cli(['server', 'identity-admin', 'delete', '--server', SERVER])).code, 0);
  await waitForIdentity(() => t.platform.snapshots.snapshot.identity.get(SERVER)?.admin === null);
  assert.deepEqual(await loginAs('app_user', token), BAD);
  assert.equal(await loginAs('owner1', PASSWORD), 'owner1');
  const shown = await t.apiStatus('GET', `/servers/${SERVER}/administrators/identity`);
  assert.equal(shown.status, 404);

  const caFile = `${t.dataDir}/../idp-ca.pem`;
  assert.equal(
    (
      await t.cli([
        'server',
        'identity-admin',
        'set',
        '--server',
        SERVER,
        '--issuer',
        idp.issuer,
        '--audience',
        AUD,
        '--login',
        'aad_admin',
        '--object-id',
        'oid-boss',
        '--type',
        'servicePrincipal',
        '--ca-file',
        caFile,
      ])
    ).code,
    0,
  );
  assert.equal((await t.cli(['server', 'update', SERVER, '--password-auth', 'Disabled'])).code, 0);
  await waitForIdentity(
    () => t.platform.snapshots.snapshot.servers.get(SERVER)?.passwordAuth === 'Disabled' && t.platform.snapshots.snapshot.identity.get(SERVER)?.admin !== null,
  );
  assert.deepEqual(await loginAs('owner1', PASSWORD), { code: '28000', message: clientErrors.passwordAuthDisabled.message });
  assert.equal(await loginAs('app_user', await idp.issueToken({ clientId: 'app', audience: AUD })), 'app_user');
});

test('RBAC: a Contributor cannot add principals; a SecurityAdmin can', async () => {
  const contrib = (await t.cli(['token', 'create', '--role', 'Contributor'])).stdout.trim();
  const sec = (await t.cli(['token', 'create', '--role', 'SecurityAdmin'])).stdout.trim();
  const body = { role: 'late_user', objectId: 'oid-late', type: 'user' };
  assert.equal((await t.apiStatus('POST', `/servers/${SERVER}/identityPrincipals`, body, contrib)).status, 403);
  assert.equal((await t.apiStatus('POST', `/servers/${SERVER}/identityPrincipals`, body, sec)).status, 200);
  const dup = await t.apiStatus('POST', `/servers/${SERVER}/identityPrincipals`, body, sec);
  assert.equal(dup.status, 409);
});
