// bench:tokens, second stage: the added connection time of a token login versus a SCRAM login,
// through the gateway of one real platform (in-process, own data dir under /tmp, loopback only).
// One server with a firewall rule for 127.0.0.1, its password administrator, an identity
// administrator for a real OpenID Connect provider (support/oidc.ts, HTTPS on 127.0.0.1)
// and one user principal. Legs, alternating in rounds (lib/login-time.ts):
//   scram   the password administrator through the gateway: TLS + SCRAM-SHA-256;
//   token   the principal through the gateway: TLS + its access token as the password
//           (RS256; ONE token, issued once, reused for every login: the gateway keeps no
//           verification results, so each login verifies the signature and claims again);
//   direct  the password administrator straight to PostgreSQL: TLS + SCRAM-SHA-256, on the
//           same postmaster (lib/direct-server.ts, as bench:gateway runs it); the baseline.
// Everything registers its undo with lib/cleanup.ts (the caller runs it under runBench).
import path from 'node:path';
import { chownSync, mkdirSync, readFileSync } from 'node:fs';
import { pbkdf2Sync } from 'node:crypto';
import { callApi, type ApiTarget } from '../../src/cli/api-client.js';
import type { Platform } from '../../src/app/platform.js';
import { startOidcProvider } from '../../support/oidc.js';
import { onCleanup } from './cleanup.js';
import { benchOptions, benchRoot, clientConfig, startPlatform } from './platform-harness.js';
import { startDirectServer } from './direct-server.js';
import { benchCertificate } from './tls-files.js';
import { freePort } from './ports.js';
import { alternateLogins, summarize, type LoginTarget, type Summary } from './login-time.js';
import { fixed, table } from './format.js';

const SERVER = 'tok1';
const ADMIN = 'benchadmin';
const PASSWORD = 'Bench-Pass-2024';
const AUDIENCE = 'api://pgwarden-bench';
const ROLE = 'app_user';
const OID = '00000000-0000-4000-8000-00000000b002';

export interface LoginStageOptions {
  readonly maxLogins: number;
  readonly maxSeconds: number;
  readonly rounds: number;
  readonly warmup: number;
  readonly direct: boolean;
}

export interface LoginStageResult {
  readonly scram: Summary;
  readonly token: Summary;
  readonly direct: Summary | null;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function runLoginStage(o: LoginStageOptions): Promise<LoginStageResult> {
  const idp = await startOidcProvider({ clients: [{ clientId: 'app', oid: OID, groups: [] }] });
  onCleanup('close the OpenID Connect provider', () => idp.close());
  const root = benchRoot('pgw-bench-tokens-');
  const t0 = performance.now();
  const { platform } = await startPlatform(benchOptions(path.join(root, 'data')));
  const cfg = clientConfig(platform);
  const ca = readFileSync(cfg.caFile, 'utf8');
  const api: ApiTarget = { url: cfg.apiUrl, token: cfg.token, ca };

  await callApi(api, 'POST', '/servers', { name: SERVER, administratorLogin: ADMIN, administratorLoginPassword: PASSWORD });
  await callApi(api, 'PUT', `/servers/${SERVER}/firewallRules/bench-loopback`, { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
  await callApi(api, 'PUT', `/servers/${SERVER}/administrators/identity`, {
    issuer: idp.issuer,
    audience: AUDIENCE,
    login: 'aad_admin',
    objectId: 'oid-bench-admin',
    type: 'servicePrincipal',
    caBundle: idp.caPem,
  });
  await callApi(api, 'POST', `/servers/${SERVER}/identityPrincipals`, { role: ROLE, objectId: OID, type: 'user' });
  const snap = () => platform.snapshots.snapshot;
  await waitFor('firewall rule in the gateway snapshot', () => (snap().network.servers.get(SERVER)?.firewall.match('127.0.0.1') ?? null) !== null);
  await waitFor(
    'principal in the gateway snapshot',
    () => (snap().identity.get(SERVER)?.admin ?? null) !== null && (snap().identity.get(SERVER)?.principals.has(ROLE) ?? false),
  );
  const token = await idp.issueToken({ clientId: 'app', audience: AUDIENCE, alg: 'RS256' });
  console.log(`\nlogin time: platform + server + identity set up in ${((performance.now() - t0) / 1000).toFixed(1)} s; data dir ${platform.options.dataDir}`);

  // What a SCRAM login costs the client that a token login does not: node-postgres derives the
  // salted password (PBKDF2-SHA-256, the verifier's iteration count) on every login.
  const id = snap().servers.get(SERVER)!.id;
  const verifier = (await platform.servers.roleVerifier(id, ADMIN))?.rolpassword ?? '';
  const iterations = Number(/^SCRAM-SHA-256\$(\d+):/.exec(verifier)?.[1] ?? 4096);
  const p0 = performance.now();
  for (let i = 0; i < 20; i++) pbkdf2Sync(PASSWORD, 'bench-salt', iterations, 32, 'sha256');
  const pbkdf2Ms = (performance.now() - p0) / 20;

  const gatewaySsl = { ca, servername: `${SERVER}.${platform.options.domain}` };
  const targets: LoginTarget[] = [
    { label: 'scram', port: platform.gateway.port, user: `${ADMIN}@${SERVER}`, password: PASSWORD, ssl: gatewaySsl, expectRole: ADMIN },
    { label: 'token', port: platform.gateway.port, user: `${ROLE}@${SERVER}`, password: token, ssl: gatewaySsl, expectRole: ROLE },
  ];
  const direct = o.direct ? await startDirect(platform, root) : null;
  if (direct) targets.push({ label: 'direct', port: direct.port, user: ADMIN, password: PASSWORD, ssl: { ca }, expectRole: ADMIN });

  console.log(
    `sequential logins over TLS, legs alternating in ${o.rounds} rounds (order rotating), up to ${o.maxLogins} logins or ${o.maxSeconds} s per leg, ` +
      `after ${o.warmup} untimed logins per leg; the token leg reuses ONE valid RS256 access token (${token.length} bytes) for every login`,
  );
  const samples = await alternateLogins(targets, { maxLogins: o.maxLogins, maxMs: o.maxSeconds * 1000, rounds: o.rounds, warmup: o.warmup }, console.log);
  await direct?.stop(); // the platform's server is stopped with the platform, at cleanup

  const connect = new Map([...samples].map(([k, v]) => [k, summarize(v.map((s) => s.connectMs))]));
  const total = new Map([...samples].map(([k, v]) => [k, summarize(v.map((s) => s.totalMs))]));
  const what: Record<string, string> = {
    scram: `scram: ${ADMIN}@${SERVER} via gateway, SCRAM-SHA-256`,
    token: `token: ${ROLE}@${SERVER} via gateway, access token`,
    direct: `direct: ${ADMIN} to PostgreSQL itself, SCRAM-SHA-256`,
  };
  console.log('');
  console.log(
    table(
      ['login (TLS, new connection each)', 'logins', 'mean ms', 'p50 ms', 'p95 ms', 'min ms', 'max ms', '+ select 1 + end: mean ms'],
      targets.map(({ label }) => {
        const c = connect.get(label)!;
        return [what[label]!, String(c.n), fixed(c.mean), fixed(c.p50), fixed(c.p95), fixed(c.min), fixed(c.max), fixed(total.get(label)!.mean)];
      }),
    ),
  );
  console.log('(connect time: new pg.Client until connect() resolves: TCP + TLS handshake + startup + authentication + backend start)');
  console.log(
    `(a SCRAM login also costs the client PBKDF2-SHA-256 × ${iterations} ≈ ${fixed(pbkdf2Ms)} ms here and one more round trip; ` +
      'a token login sends the token in one password message, the gateway verifies it, then logs in to the server with SCRAM keys it has cached)',
  );
  return { scram: connect.get('scram')!, token: connect.get('token')!, direct: connect.get('direct') ?? null };
}

/** The server's postmaster under the bench, with a TLS listener on loopback (as bench:gateway does). */
async function startDirect(platform: Platform, root: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const id = platform.snapshots.snapshot.servers.get(SERVER)!.id;
  const account = await platform.accounts.server(id); // the server's own OS user
  const benchDir = path.join(root, 'bench');
  mkdirSync(benchDir, { mode: 0o700 });
  chownSync(benchDir, account.uid, account.gid);
  const tls = await benchCertificate(platform.ca, benchDir, account);
  await platform.servers.stop(id);
  return startDirectServer({
    dataDir: platform.paths.serverData(id),
    socketDir: platform.paths.serverSocketDir(id),
    benchDir,
    account,
    port: await freePort(),
    tls,
  });
}
