// Network rules enforced at the gateway: deny by default, IP rules (IPv4, IPv6), virtual
// networks with service endpoints, PROXY protocol (crafted and from a real HAProxy), private
// endpoints, the public access switch, and propagation to a second gateway within a second.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { auditEvents, until, startTestPlatform, startGatewayProcess, type TestPlatform } from '../helpers/platform.js';
import { boundStream, conninfo, errorIn, psql, rawFrom, startupPacket, tryConnect } from '../helpers/clients.js';
import { buildProxyV2, azureLinkIdTlv, awsVpceIdTlv } from '../../src/gateway/proxy-protocol/index.js';

let t: TestPlatform;
let ca: string;
let linkPort: number;
const PASSWORD = 'Netw0rk-Passw0rd!';
const SERVER = 'net1';
const children: ChildProcess[] = [];
const SSL_REQUIRED = 'SSL connection is required. Please specify SSL options and retry.';

before(async () => {
  t = await startTestPlatform({
    gatewayHosts: ['127.0.0.1', '::1'],
    privateLink: { hosts: ['127.0.0.1'], port: 0, loadBalancers: ['127.0.0.1/32'] },
  });
  ca = readFileSync(t.platform.paths.caCert, 'utf8');
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  // The gateway decides from its snapshot, which the change feed brings up to date a moment
  // after the API answered (longer on a loaded machine): until then it says the server is being created.
  await until('the server Ready in the gateway snapshot', async () => t.platform.snapshots.snapshot.servers.get(SERVER)?.state === 'Ready', 30_000, 50);
  linkPort = t.platform.gateway.portOf('private-link')!;
});
after(async () => {
  for (const c of children) c.kill('SIGTERM');
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cli = async (...args: string[]) => {
  const r = await t.cli(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
function client(opts: { from?: string; host?: string; port?: number; user?: string } = {}): pg.Client {
  return new pg.Client({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? t.platform.gateway.port,
    user: opts.user ?? `alice@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca, servername: `${SERVER}.pgwarden.localhost` },
    ...(opts.from ? { stream: boundStream(opts.from) } : {}),
  });
}
const connects = (opts: Parameters<typeof client>[0] = {}) => tryConnect(client(opts));
async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail('not within time');
}

test('deny by default, with the exact pg_hba.conf text; a rule for 127.0.0.1 lets psql in', async () => {
  const denied = await psql(conninfo(t, { user: `alice@${SERVER}`, sslmode: 'require' }), PASSWORD, ['-c', 'select 1']);
  assert.match(denied.stderr, /FATAL: {2}no pg_hba\.conf entry for host "127\.0\.0\.1", user "alice", database "postgres", SSL on/);
  await cli('server', 'firewall-rule', 'create', '--server', SERVER, '--name', 'local', '--start-ip-address', '127.0.0.1', '--end-ip-address', '127.0.0.1');
  await eventually(async () => (await psql(conninfo(t, { user: `alice@${SERVER}`, sslmode: 'require' }), PASSWORD, ['-c', 'select 1'])).code === 0);
});

test('rules for other addresses do not admit; overlapping and adjacent ranges; deletion applies to new connections', async () => {
  assert.deepEqual(await connects({ from: '127.0.0.5' }), {
    code: '28000',
    message: 'no pg_hba.conf entry for host "127.0.0.5", user "alice", database "postgres", SSL on',
  });
  await cli('server', 'firewall-rule', 'create', '--server', SERVER, '--name', 'low', '--start-ip-address', '127.0.0.2', '--end-ip-address', '127.0.0.4');
  await cli('server', 'firewall-rule', 'create', '--server', SERVER, '--name', 'adjacent', '--start-ip-address', '127.0.0.5', '--end-ip-address', '127.0.0.9');
  await cli('server', 'firewall-rule', 'create', '--server', SERVER, '--name', 'overlap', '--start-ip-address', '127.0.0.8', '--end-ip-address', '127.0.0.20');
  await eventually(async () => (await connects({ from: '127.0.0.5' })) === true);
  for (const from of ['127.0.0.2', '127.0.0.4', '127.0.0.9', '127.0.0.15', '127.0.0.20']) assert.equal(await connects({ from }), true, from);
  assert.equal(((await connects({ from: '127.0.0.21' })) as { code: string }).code, '28000');
  // An open session survives the deletion of its rule; new connections do not get in.
  const open = client({ from: '127.0.0.15' });
  await open.connect();
  await cli('server', 'firewall-rule', 'delete', '--server', SERVER, '--name', 'overlap');
  await eventually(async () => (await connects({ from: '127.0.0.15' })) !== true);
  assert.equal((await open.query('select 7 as n')).rows[0].n, 7);
  await open.end();
  assert.equal(await connects({ from: '127.0.0.9' }), true);
});

test('IPv6: ::1 is denied until an IPv6 rule admits it', async () => {
  const before = await connects({ host: '::1' });
  assert.deepEqual(before, { code: '28000', message: 'no pg_hba.conf entry for host "::1", user "alice", database "postgres", SSL on' });
  await cli('server', 'firewall-rule', 'create', '--server', SERVER, '--name', 'v6-loopback', '--start-ip-address', '::1', '--end-ip-address', '::1');
  await eventually(async () => (await connects({ host: '::1' })) === true);
});

test('virtual network: service-endpoint subnets are judged only by VNet rules', async () => {
  await cli('network', 'vnet', 'create', 'corp', '--address-prefix', '127.10.0.0/16', '--listen', '127.10.0.1');
  await cli('network', 'vnet', 'subnet', 'create', '--vnet', 'corp', '--name', 'web', '--address-prefix', '127.10.1.0/24', '--service-endpoint');
  await cli('network', 'vnet', 'subnet', 'create', '--vnet', 'corp', '--name', 'legacy', '--address-prefix', '127.10.2.0/24');
  // An IP rule covering the whole range does not apply to service-endpoint traffic.
  await cli(
    'server',
    'firewall-rule',
    'create',
    '--server',
    SERVER,
    '--name',
    'corp-range',
    '--start-ip-address',
    '127.10.0.0',
    '--end-ip-address',
    '127.10.255.255',
  );
  await eventually(async () => t.platform.gateway.portOf('private', 'corp') !== null);
  const vnetPort = t.platform.gateway.portOf('private', 'corp')!;
  const viaVnet = (from: string) => connects({ from, host: '127.10.0.1', port: vnetPort });
  await eventually(async () => {
    const r = await viaVnet('127.10.1.5');
    return r !== true && r.message === 'Client from Virtual Networks is not allowed to access the server.';
  });
  // Subnet without the endpoint: judged by IP rules, which admit it (once the rule created
  // above has reached the gateway: the refusal just seen does not depend on it).
  await eventually(async () => (await viaVnet('127.10.2.5')) === true);
  await cli('server', 'vnet-rule', 'create', '--server', SERVER, '--name', 'allow-web', '--subnet', 'corp/subnets/web');
  await eventually(async () => (await viaVnet('127.10.1.5')) === true);
  // The VNet rule is enough: removing the IP rule keeps the service-endpoint subnet in, and
  // takes the legacy subnet out.
  await cli('server', 'firewall-rule', 'delete', '--server', SERVER, '--name', 'corp-range');
  await eventually(async () => (await viaVnet('127.10.2.5')) !== true);
  assert.equal(await viaVnet('127.10.1.5'), true);
});

function proxied(header: Buffer, from = '127.0.0.1', extra: Buffer = Buffer.alloc(0)) {
  return rawFrom(from, linkPort, Buffer.concat([header, extra, startupPacket({ user: `alice@${SERVER}`, database: 'postgres' })]));
}
const hdr = (tlvs: { type: number; value: Buffer }[] = [], source = '127.0.0.1', withCrc32c = true) =>
  buildProxyV2({ command: 'PROXY', source: { address: source, port: 40000 }, destination: { address: '127.0.0.1', port: linkPort }, tlvs, withCrc32c });

test('PROXY v2: spoofing from an untrusted address, a second header, bad CRC32C and truncated TLVs are closed', async () => {
  const good = hdr([azureLinkIdTlv(1)]);
  const untrusted = await proxied(good, '127.0.0.9');
  assert.equal(untrusted.closed, true);
  assert.equal(untrusted.data.length, 0);
  const second = await proxied(good, '127.0.0.1', hdr());
  assert.equal(second.closed, true);
  assert.equal(second.data.length, 0);
  const badCrc = Buffer.from(good);
  badCrc[badCrc.length - 1]! ^= 0xff;
  assert.equal((await proxied(badCrc)).data.length, 0);
  const truncated = Buffer.from(good);
  truncated.writeUInt16BE(truncated.readUInt16BE(14) + 3, 14); // declares more TLV bytes than sent
  assert.equal((await proxied(truncated.subarray(0, good.length))).data.length, 0);
  const local = buildProxyV2({ command: 'LOCAL' });
  assert.equal((await proxied(local)).data.length, 0);
  const events = await until(
    'the refusals in the audit log',
    async () => {
      const text = JSON.stringify(auditEvents(t));
      return text.includes('"reason":"proxy-local-refused"') && text;
    },
    10_000,
    50,
  );
  assert.match(events, /"reason":"proxy-untrusted-source"/);
  assert.match(events, /"reason":"proxy-second-header"/);
  assert.match(events, /"reason":"proxy-bad-crc"/);
  assert.match(events, /"reason":"proxy-local-refused"/);
});

test('private endpoints: an unknown LinkID is refused and shows up Pending; approved, it connects', async () => {
  const linkId = 4026531841; // above 2^31: little-endian uint32 on the wire
  const first = await proxied(hdr([azureLinkIdTlv(linkId)], '10.1.2.3'));
  assert.deepEqual(errorIn(first.data), { sqlstate: '28000', message: 'Private endpoint connection is not approved for this server.' });
  await eventually(async () => {
    const { value } = await t.api<{ value: { privateEndpoint: { id: string }; status: string }[] }>('GET', `/servers/${SERVER}/privateEndpointConnections`);
    return value.some((c) => c.privateEndpoint.id === String(linkId) && c.status === 'Pending');
  });
  await cli('server', 'private-endpoint-connection', 'approve', '--server', SERVER, '--id', String(linkId), '--description', 'app subnet');
  // Admitted by the network: the next check (TLS policy) is what answers this plaintext probe.
  await eventually(async () => errorIn((await proxied(hdr([azureLinkIdTlv(linkId)], '10.1.2.3'))).data)?.message === SSL_REQUIRED);
  // AWS VPC endpoint ids the same way; rejected ones stay out.
  const vpce = 'vpce-0123456789abcdef0';
  await proxied(hdr([awsVpceIdTlv(vpce)], '10.9.9.9'));
  await eventually(async () => (await t.cli(['server', 'private-endpoint-connection', 'list', '--server', SERVER])).stdout.includes(vpce));
  await cli('server', 'private-endpoint-connection', 'reject', '--server', SERVER, '--id', vpce);
  await sleep(300);
  assert.deepEqual(errorIn((await proxied(hdr([awsVpceIdTlv(vpce)], '10.9.9.9'))).data), {
    sqlstate: '28000',
    message: 'Private endpoint connection is not approved for this server.',
  });
});

test('PROXY v2 from a real HAProxy: the source address in the header is the client address', async () => {
  const dir = path.dirname(t.platform.paths.root);
  const front = await freePort();
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 100',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend pg',
      `  bind 127.0.0.1:${front}`,
      '  default_backend gw',
      'backend gw',
      `  server gw1 127.0.0.1:${linkPort} send-proxy-v2`,
      '',
    ].join('\n'),
  );
  const haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' });
  children.push(haproxy);
  await eventually(
    async () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: front }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
  );
  // 127.0.0.33 has no rule: refused, with its own address in the message.
  const denied = await connects({ from: '127.0.0.33', port: front });
  assert.deepEqual(denied, { code: '28000', message: 'no pg_hba.conf entry for host "127.0.0.33", user "alice", database "postgres", SSL on' });
  await cli(
    'server',
    'firewall-rule',
    'create',
    '--server',
    SERVER,
    '--name',
    'via-haproxy',
    '--start-ip-address',
    '127.0.0.33',
    '--end-ip-address',
    '127.0.0.33',
  );
  await eventually(async () => (await connects({ from: '127.0.0.33', port: front })) === true);
  await sleep(100);
  const ok = auditEvents<{ type: string; connection?: { clientAddress: string } }>(t).filter(
    (e) => e.type === 'auth.succeeded' && e.connection?.clientAddress === '127.0.0.33',
  );
  assert.ok(ok.length >= 1);
  haproxy.kill('SIGTERM');
});

test('a change reaches a second gateway on the same catalog within a second', async () => {
  const gw = startGatewayProcess(t.dataDir);
  const gw2 = gw.child;
  children.push(gw2);
  const port2 = await gw.port;
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const from = `127.0.0.${60 + i}`;
    assert.notEqual(await connects({ from, port: port2 }), true);
    const started = Date.now();
    await t.api('POST', `/servers/${SERVER}/firewallRules`, { name: `prop-${i}`, startIpAddress: from, endIpAddress: from });
    let seen1 = 0;
    let seen2 = 0;
    while ((!seen1 || !seen2) && Date.now() - started < 5000) {
      if (!seen1 && (await connects({ from })) === true) seen1 = Date.now() - started;
      if (!seen2 && (await connects({ from, port: port2 })) === true) seen2 = Date.now() - started;
    }
    assert.ok(seen1 > 0 && seen2 > 0, 'both gateways admitted the address');
    samples.push(Math.max(seen1, seen2));
  }
  assert.ok(Math.max(...samples) <= 1000, `propagation took ${samples.join(', ')} ms`);
  gw2.kill('SIGTERM');
});

test('public access disabled: public clients refused and their sessions closed, rule edits 409, approved endpoint still in', async () => {
  const open = client();
  await open.connect();
  const closed = new Promise<Error & { code?: string }>((resolve) => open.on('error', resolve));
  await cli('server', 'update', SERVER, '--public-network-access', 'Disabled');
  const err = await closed;
  assert.equal(err.code, '57P01');
  await eventually(async () => {
    const r = await connects();
    return r !== true && r.message === 'Public network access is denied for this server. Connect through an approved private endpoint.';
  });
  const edit = await t.apiStatus('POST', `/servers/${SERVER}/firewallRules`, { name: 'late', startIpAddress: '127.0.0.70', endIpAddress: '127.0.0.70' });
  assert.equal(edit.status, 409);
  const viaEndpoint = await proxied(hdr([azureLinkIdTlv(4026531841)], '10.1.2.3'));
  assert.equal(errorIn(viaEndpoint.data)?.message, SSL_REQUIRED);
  await cli('server', 'update', SERVER, '--public-network-access', 'Enabled');
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}
