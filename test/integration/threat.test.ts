// Threat protection end to end: real logins through the gateway raise alerts in the API and the
// CLI, e-mails reach a real SMTP server, signed webhooks reach a real HTTP receiver, and the
// automatic protection throttles the attacking address without locking the user out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { auditEvents, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql, tryConnect } from '../helpers/clients.js';
import { buildProxyV2 } from '../../src/gateway/proxy-protocol/index.js';
import { verifyWebhookSignature } from '../../src/threat/notify/index.js';

let t: TestPlatform;
let ca: string;
let linkPort: number;
let smtp: SMTPServer;
let hooks: http.Server;
const mails: { to: string[]; data: string }[] = [];
const deliveries: { headers: http.IncomingHttpHeaders; body: string }[] = [];
const SERVER = 'shop';
const ADMIN = 'shopadmin';
const PASSWORD = 'Thr3at-Passw0rd!';
const SECRET = 'webhook-secret-for-tests-0123456789';
const THROTTLED = 'Too many failed login attempts from this address. Try again later.';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventually<T>(what: string, check: () => Promise<T | undefined | null | false>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Alert {
  id: string;
  type: string;
  severity: string;
  state: string;
  count: number;
  sourceAddress: string | null;
  principal: string | null;
  description: string;
  location: { kind: string; country: string | null; asn: number | null } | null;
  evidence: Record<string, unknown>;
  recommendedAction: string;
}
const alerts = async (q = '') => (await t.api<{ value: Alert[] }>('GET', `/servers/${SERVER}/alerts${q}`)).value;

/** psql from a loopback alias (libpq's hostaddr + a local bind is not available: use pg). */
async function login(opts: {
  from?: string;
  user?: string;
  password?: string;
  app?: string;
  proxySource?: string;
}): Promise<true | { code?: string; message: string }> {
  const viaProxy = opts.proxySource !== undefined;
  const c = new pg.Client({
    host: '127.0.0.1',
    port: viaProxy ? linkPort : t.platform.gateway.port,
    user: `${opts.user ?? ADMIN}@${SERVER}`,
    password: opts.password ?? PASSWORD,
    database: 'postgres',
    ssl: { ca, servername: `${SERVER}.pgwarden.localhost` },
    ...(opts.app ? { application_name: opts.app } : {}),
    stream: () => {
      const s = new net.Socket();
      const connect = s.connect.bind(s) as (o: net.TcpSocketConnectOpts) => net.Socket;
      (s as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port: number, host: string) => {
        const r = connect({ port, host, ...(opts.from ? { localAddress: opts.from } : {}) });
        if (viaProxy) {
          s.once('connect', () =>
            s.write(
              buildProxyV2({ command: 'PROXY', source: { address: opts.proxySource!, port: 40000 }, destination: { address: '127.0.0.1', port: linkPort } }),
            ),
          );
        }
        return r;
      };
      return s;
    },
  });
  return tryConnect(c);
}

const admin = (sql: string) =>
  psql(
    conninfo(t, { user: `${ADMIN}@${SERVER}`, sslmode: 'verify-full', sslrootcert: t.platform.paths.caCert, host: `${SERVER}.pgwarden.localhost` }),
    PASSWORD,
    ['-c', sql],
  );

before(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, cb) {
      let data = '';
      stream.on('data', (c: Buffer) => (data += c.toString('utf8')));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data });
        cb();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));
  hooks = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  const smtpPort = (smtp.server.address() as net.AddressInfo).port;
  t = await startTestPlatform({
    privateLink: { hosts: ['127.0.0.1'], port: 0, loadBalancers: ['127.0.0.1/32'] },
    threat: { smtp: { host: '127.0.0.1', port: smtpPort, secure: false, requireTls: false, from: 'pgwarden@example.test' } },
  });
  ca = readFileSync(t.platform.paths.caCert, 'utf8');
  linkPort = t.platform.gateway.portOf('private-link')!;
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', ADMIN, '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await t.api('PUT', `/servers/${SERVER}/firewallRules/loopback`, { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.255' });
  await t.api('PUT', `/servers/${SERVER}/firewallRules/travel`, { startIpAddress: '8.8.8.0', endIpAddress: '8.8.8.255' });
  const hookUrl = `http://127.0.0.1:${(hooks.address() as net.AddressInfo).port}/alerts`;
  const p = await t.cli([
    'server',
    'threat-protection',
    'update',
    '--server',
    SERVER,
    '--state',
    'Enabled',
    '--email-addresses',
    'secops@example.test',
    '--webhook',
    hookUrl,
    '--webhook-secret',
    SECRET,
    '--learning-period-seconds',
    '4',
  ]);
  assert.equal(p.code, 0, p.stderr);
  await eventually('the policy in the gateway snapshot', async () => t.platform.snapshots.snapshot.threat.get(SERVER)?.state === 'Enabled');
  // Learning: the administrator logs in from loopback; bob exists but does not log in yet.
  assert.equal(await login({}), true);
  assert.equal((await admin(`create role bob login password '${PASSWORD}'`)).code, 0);
});

after(async () => {
  await t?.stop();
  await new Promise<void>((r) => smtp?.close(() => r()));
  await new Promise<void>((r) => hooks?.close(() => r()));
});

test('the policy shows its settings through the CLI, never the webhook secret', async () => {
  const r = await t.cli(['server', 'threat-protection', 'show', '--server', SERVER, '--output', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const policy = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(policy.state, 'Enabled');
  assert.deepEqual(policy.emailAddresses, ['secops@example.test']);
  assert.equal((policy.webhooks as { url: string }[])[0]!.url.endsWith('/alerts'), true);
  assert.doesNotMatch(r.stdout, new RegExp(SECRET));
  const bad = await t.apiStatus('PATCH', `/servers/${SERVER}/securityAlertPolicy`, { emailAddresses: ['not an address'] });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /'not an address' is not an e-mail address/);
});

test('brute force: 30 wrong passwords give one alert with the count, an e-mail, a signed webhook, throttling; the user still logs in elsewhere', async () => {
  const attacker = '127.0.0.66';
  const results = [];
  for (let i = 0; i < 30; i++) results.push(await login({ from: attacker, password: `wrong-${i}` }));
  const attackEnd = Date.now();
  assert.deepEqual(results[0], { code: '28P01', message: `password authentication failed for user "${ADMIN}"` });
  // Throttled: the pair (user, address) after 5 failures, with the SPEC text.
  assert.deepEqual(results[29], { code: '53300', message: THROTTLED });
  assert.equal(results.filter((r) => typeof r === 'object' && r.code === '28P01').length, 5);
  assert.deepEqual(await login({ from: attacker }), { code: '53300', message: THROTTLED });

  const alert = await eventually(
    'the BruteForce alert',
    async () => (await alerts('?type=BruteForce')).find((a) => a.sourceAddress === attacker && a.count >= 30),
    2000,
  );
  assert.ok(Date.now() - attackEnd < 2500);
  const all = (await alerts('?type=BruteForce')).filter((a) => a.sourceAddress === attacker && a.severity === 'Medium');
  assert.equal(all.length, 1, 'one alert per incident');
  await sleep(700); // the count is flushed every half second: no extra attempts may appear
  const settled = (await alerts('?type=BruteForce')).find((a) => a.id === alert.id)!;
  assert.equal(settled.count, 31, '30 attempts and the throttled right password');
  assert.equal(settled.severity, 'Medium');
  assert.match(settled.recommendedAction, /firewall/);

  // The right password from another address still works: nobody is locked out by name.
  assert.equal(await login({ from: '127.0.0.67' }), true);

  // E-mail through a real SMTP server, saying what happened and what to do.
  const mail = await eventually('the alert e-mail', async () => mails.find((m) => m.data.includes(attacker)));
  assert.deepEqual(mail.to, ['secops@example.test']);
  assert.match(mail.data, /Subject: .*Medium.*Brute force/i);
  assert.match(mail.data, new RegExp(SERVER));
  // Webhook with a signature that verifies with the secret (and not with another).
  const hook = await eventually('the webhook', async () => deliveries.find((d) => d.body.includes(attacker)));
  const ts = String(hook.headers['x-pgwarden-timestamp']);
  const sig = String(hook.headers['x-pgwarden-signature']);
  assert.equal(verifyWebhookSignature(SECRET, ts, hook.body, sig), true);
  assert.equal(verifyWebhookSignature('another-secret-0123456789', ts, hook.body, sig), false);
  assert.equal((JSON.parse(hook.body) as { alert: { type: string } }).alert.type, 'BruteForce');

  // The block is visible and removable through the CLI; then the right password from the
  // attacking address succeeds, and that success after the attack is a High alert.
  const list = await t.cli(['server', 'protection', 'list', '--server', SERVER, '--output', 'json']);
  const blocks = JSON.parse(list.stdout) as { id: string; scope: string; address: string; user: string | null }[];
  const block = blocks.find((b) => b.address === attacker && b.scope === 'user-address' && b.user === ADMIN);
  assert.ok(block, list.stdout);
  const un = await t.cli(['server', 'protection', 'unblock', '--server', SERVER, '--id', block.id]);
  assert.equal(un.code, 0, un.stderr);
  assert.equal(await login({ from: attacker }), true);
  const high = await eventually('the High alert', async () =>
    (await alerts('?severity=High')).find((a) => a.type === 'BruteForce' && a.sourceAddress === attacker),
  );
  assert.equal(high.principal, ADMIN);

  // The alert is in the tamper-evident audit log too, with the failed logins' reasons.
  const events = auditEvents<{ type: string; alertType?: string; reason?: string; connection?: { clientAddress: string } }>(t);
  assert.ok(events.some((e) => e.type === 'alert.raised' && e.alertType === 'BruteForce'));
  assert.ok(events.some((e) => e.type === 'auth.failed' && e.connection?.clientAddress === attacker && /wrong password/.test(e.reason ?? '')));
  assert.ok(events.some((e) => e.type === 'protection.blocked'));

  // Deliveries are recorded with the alert.
  await eventually('deliveries recorded', async () => {
    const d = (await t.api<{ deliveries: { channel: string; outcome: string }[] }>('GET', `/servers/${SERVER}/alerts/${alert.id}`)).deliveries;
    return d.some((x) => x.channel === 'email' && x.outcome === 'delivered') && d.some((x) => x.channel === 'webhook' && x.outcome === 'delivered');
  });
});

test('a login with application_name=sqlmap gives HarmfulApplication (High)', async () => {
  assert.equal(await login({ from: '127.0.0.70', app: 'sqlmap/1.8#stable (https://sqlmap.org)' }), true);
  const a = await eventually('HarmfulApplication', async () => (await alerts('?type=HarmfulApplication')).find((x) => x.sourceAddress === '127.0.0.70'));
  assert.equal(a.severity, 'High');
  assert.match(a.description, /sqlmap/);
});

test('after the learning period: a new principal gives PrincipalAnomaly, a login from another country gives GeoAnomaly', async () => {
  const policy = await t.api<{ enabledAt: string; detectors: { learningPeriodSeconds: number } }>('GET', `/servers/${SERVER}/securityAlertPolicy`);
  const learnedAt = Date.parse(policy.enabledAt) + policy.detectors.learningPeriodSeconds * 1000;
  if (Date.now() < learnedAt) await sleep(learnedAt - Date.now() + 100);
  assert.equal(await login({ user: 'bob', from: '127.0.0.80' }), true);
  const p = await eventually('PrincipalAnomaly', async () => (await alerts('?type=PrincipalAnomaly')).find((x) => x.principal === 'bob'));
  assert.equal(p.severity, 'Low');
  assert.equal(
    (await alerts('?type=PrincipalAnomaly')).some((x) => x.principal === ADMIN),
    false,
    'the administrator was learned',
  );

  // Through the private-link listener: the PROXY header's source address is the client.
  assert.equal(await login({ proxySource: '8.8.8.8' }), true);
  const g = await eventually('GeoAnomaly', async () => (await alerts('?type=GeoAnomaly')).find((x) => x.principal === ADMIN));
  assert.equal(g.sourceAddress, '8.8.8.8');
  assert.equal(g.location?.country, 'US');
  const n = await eventually('NetworkAnomaly', async () => (await alerts('?type=NetworkAnomaly')).find((x) => x.principal === ADMIN));
  assert.equal(n.location?.asn, 15169);
});

test('SQL injection shapes from an application raise SqlInjection', async () => {
  assert.equal((await admin('create table items (id int, name text)')).code, 0);
  const c = new pg.Client({
    host: '127.0.0.1',
    port: t.platform.gateway.port,
    user: `${ADMIN}@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    application_name: 'shop-web',
    ssl: { ca, servername: `${SERVER}.pgwarden.localhost` },
  });
  await c.connect();
  await c.query(`select id from items where name = 'lamp'`);
  await c.query(`select id from items where name = '' or '1'='1'`);
  await c.end();
  const a = await eventually('SqlInjection', async () => (await alerts('?type=SqlInjection')).find((x) => x.principal === ADMIN));
  assert.equal(a.severity, 'High');
  assert.doesNotMatch(JSON.stringify(a.evidence), /lamp/, 'evidence has no literal values');
});

test('dismiss through the CLI; a disabled alert type or a disabled policy raises nothing', async () => {
  const [a] = await alerts('?type=HarmfulApplication');
  const d = await t.cli(['alert', 'dismiss', '--server', SERVER, a!.id, '--output', 'json']);
  assert.equal(d.code, 0, d.stderr);
  assert.equal((JSON.parse(d.stdout) as { state: string }).state, 'Dismissed');
  const listed = await t.cli(['alert', 'list', '--server', SERVER, '--severity', 'High']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /BruteForce/);

  await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--disabled-alerts', 'HarmfulApplication']);
  await eventually('disabled type in the snapshot', async () =>
    t.platform.snapshots.snapshot.threat.get(SERVER)?.disabledAlerts.includes('HarmfulApplication'),
  );
  assert.equal(await login({ from: '127.0.0.71', app: 'sqlmap' }), true);
  await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--state', 'Disabled']);
  await eventually('disabled policy in the snapshot', async () => t.platform.snapshots.snapshot.threat.get(SERVER)?.state === 'Disabled');
  assert.equal(await login({ from: '127.0.0.72', app: 'hydra' }), true);
  await sleep(1000);
  const harmful = await alerts('?type=HarmfulApplication');
  assert.deepEqual(
    harmful.map((x) => x.sourceAddress),
    ['127.0.0.70'],
  );
});
