// V5: virtual-network listeners under the default wildcard bind (--gateway-host 0.0.0.0 ::).
// A connection to a virtual network's listen address is that network's traffic whether or not
// a socket of its own could be bound (the gateway tells it from the connection's own local
// address), so a service-endpoint subnet is judged only by VNet rules; and a network the
// gateway cannot serve is never shown as in force: `vnet create` fails, or its state says why.
// The second half uses a real second network: a network namespace joined by a veth pair,
// psql running inside it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { auditEvents, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { boundStream, tryConnect } from '../helpers/clients.js';
import { defaultOptions } from '../../src/app/platform.js';

let t: TestPlatform;
const PASSWORD = 'VnetL1sten-Passw0rd!';
const SERVER = 'vnl1';
const NOT_ALLOWED = 'Client from Virtual Networks is not allowed to access the server.';
// Our own namespace and veth pair; their addresses exist only on these two interfaces.
const NS = `pgwv5-${process.pid}`;
const HOST_IF = `pv${process.pid % 100_000}h`;
const NS_IF = `pv${process.pid % 100_000}n`;
const HOST_ADDR = '10.213.0.1';
const NS_ADDR = '10.213.1.5';

before(async () => {
  // The default listeners: the wildcard addresses `pgwarden up` binds without --gateway-host.
  assert.deepEqual(defaultOptions.gatewayHosts, ['0.0.0.0', '::']);
  t = await startTestPlatform({ gatewayHosts: [...defaultOptions.gatewayHosts] });
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  removeNamespace();
  await t?.stop();
});

const cli = async (...args: string[]) => {
  const r = await t.cli(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const json = async <T = Record<string, unknown>>(...args: string[]) => JSON.parse(await cli('--output', 'json', ...args)) as T;

function client(from: string, host: string): pg.Client {
  return new pg.Client({
    host,
    port: t.platform.gateway.port,
    user: `alice@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(t.platform.paths.caCert, 'utf8'), servername: `${SERVER}.pgwarden.localhost` },
    stream: boundStream(from),
  });
}
const connects = (from: string, host: string) => tryConnect(client(from, host));

test('loopback: a service-endpoint subnet reaching the VNet address under the wildcard bind is judged by VNet rules', async () => {
  await cli('network', 'vnet', 'create', 'corp', '--address-prefix', '127.20.0.0/16', '--listen', '127.20.0.1');
  await cli('network', 'vnet', 'subnet', 'create', '--vnet', 'corp', '--name', 'web', '--address-prefix', '127.20.1.0/24', '--service-endpoint');
  await cli('network', 'vnet', 'subnet', 'create', '--vnet', 'corp', '--name', 'ops', '--address-prefix', '127.20.2.0/24', '--service-endpoint');
  await cli('server', 'vnet-rule', 'create', '--server', SERVER, '--name', 'allow-web', '--subnet', 'corp/subnets/web');
  // The reproduction: this got `no pg_hba.conf entry` from the public listener.
  await until('the VNet rule admits subnet web', async () => (await connects('127.20.1.5', '127.20.0.1')) === true, 10_000, 100);

  // An IP rule covering the whole network admits public traffic, never service-endpoint traffic.
  await cli(
    'server',
    'firewall-rule',
    'create',
    '--server',
    SERVER,
    '--name',
    'corp-range',
    '--start-ip-address',
    '127.20.0.0',
    '--end-ip-address',
    '127.20.255.255',
  );
  await until('the IP rule applies on the public address', async () => (await connects('127.20.2.5', '127.0.0.1')) === true, 10_000, 100);
  assert.deepEqual(await connects('127.20.2.5', '127.20.0.1'), { code: '28000', message: NOT_ALLOWED });

  // The audit log names the virtual network the connection came through.
  const accepted = auditEvents<{ type: string; connection?: { clientAddress: string; listener: string; listenerName?: string } }>(t).filter(
    (e) => e.type === 'connection.accepted' && e.connection?.clientAddress === '127.20.1.5',
  );
  assert.ok(accepted.length > 0);
  for (const e of accepted) assert.deepEqual([e.connection?.listener, e.connection?.listenerName], ['private', 'corp']);

  // The network and its rule say they are in force, and how.
  const corp = await json('network', 'vnet', 'show', 'corp');
  assert.equal(corp.listenerState, 'Ready');
  const rule = await json('server', 'vnet-rule', 'show', '--server', SERVER, '--name', 'allow-web');
  assert.equal(rule.state, 'Ready');
});

test('a listen address the gateway cannot serve: vnet create fails with a clear error and writes nothing', async () => {
  // 10.214.0.1 is on no interface of this host (nothing is sent to it: only a bind is tried).
  const r = await t.cli(['network', 'vnet', 'create', 'far', '--address-prefix', '10.214.0.0/16', '--listen', '10.214.0.1']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /The gateway cannot listen on 10\.214\.0\.1 for virtual network 'far': 10\.214\.0\.1 is not an address of this host/);
  const missing = await t.apiStatus('GET', '/virtualNetworks/far');
  assert.equal(missing.status, 404);
});

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
function removeNamespace(): void {
  for (const args of [
    ['link', 'del', HOST_IF],
    ['netns', 'del', NS],
  ]) {
    try {
      ip(...args);
    } catch {
      /* already gone */
    }
  }
}
function nsPsql(sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const conninfo = `hostaddr=${HOST_ADDR} port=${t.platform.gateway.port} user=alice@${SERVER} dbname=postgres sslmode=require connect_timeout=10`;
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', NS, 'psql', conninfo, '-X', '-A', '-t', '-c', sql],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: PASSWORD },
        timeout: 30_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() });
      },
    );
  });
}

test('a real second network (netns + veth): psql inside it is judged by VNet rules, and a lost address shows in the state', async () => {
  removeNamespace();
  ip('netns', 'add', NS);
  ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', NS_IF);
  ip('link', 'set', NS_IF, 'netns', NS);
  ip('addr', 'add', `${HOST_ADDR}/16`, 'dev', HOST_IF);
  ip('link', 'set', HOST_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_ADDR}/16`, 'dev', NS_IF);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', NS_IF, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');

  await cli('network', 'vnet', 'create', 'lab', '--address-prefix', '10.213.0.0/16', '--listen', HOST_ADDR);
  await cli('network', 'vnet', 'subnet', 'create', '--vnet', 'lab', '--name', 'apps', '--address-prefix', '10.213.1.0/24', '--service-endpoint');
  // An IP rule for the whole network: it must not admit the service-endpoint subnet.
  await cli(
    'server',
    'firewall-rule',
    'create',
    '--server',
    SERVER,
    '--name',
    'lab-range',
    '--start-ip-address',
    '10.213.0.0',
    '--end-ip-address',
    '10.213.255.255',
  );
  const denied = await until(
    'the subnet refused with the VNet text',
    async () => {
      const r = await nsPsql('select 1');
      return r.stderr.includes(NOT_ALLOWED) && r;
    },
    10_000,
    100,
  );
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /FATAL: {2}Client from Virtual Networks is not allowed to access the server\./);

  await cli('server', 'vnet-rule', 'create', '--server', SERVER, '--name', 'allow-apps', '--subnet', 'lab/subnets/apps');
  const ok = await until(
    'psql in the namespace admitted',
    async () => {
      const r = await nsPsql("select 'in through ' || 'lab'");
      return r.code === 0 && r;
    },
    10_000,
    100,
  );
  assert.equal(ok.stdout, 'in through lab');
  assert.equal((await json('network', 'vnet', 'show', 'lab')).listenerState, 'Ready');
  assert.equal((await json('server', 'vnet-rule', 'show', '--server', SERVER, '--name', 'allow-apps')).state, 'Ready');

  // The address leaves the host: the gateway can no longer serve the network, and says so.
  ip('link', 'del', HOST_IF);
  await cli('server', 'firewall-rule', 'delete', '--server', SERVER, '--name', 'lab-range'); // any catalog change re-checks
  const lab = await until(
    'the network shown as not served',
    async () => {
      const v = await json('network', 'vnet', 'show', 'lab');
      return v.listenerState === 'Failed' && v;
    },
    10_000,
    100,
  );
  assert.match(String(lab.listenerProblem), /10\.213\.0\.1 is not an address of this host/);
  // Not only in the process log: the audit log records that the network stopped being served.
  const event = await until(
    'the listener failure in the audit log',
    async () => auditEvents(t).find((e) => e.type === 'gateway.vnet_listener' && e.vnet === 'lab' && e.state === 'Failed'),
    10_000,
    50,
  );
  assert.deepEqual([event.address, event.reason], [HOST_ADDR, '10.213.0.1 is not an address of this host']);
  const rule = await json('server', 'vnet-rule', 'show', '--server', SERVER, '--name', 'allow-apps');
  assert.equal(rule.state, 'Unknown');
  assert.match(String(rule.stateReason), /The gateway cannot serve virtual network 'lab' on 10\.213\.0\.1: 10\.213\.0\.1 is not an address of this host/);
  removeNamespace();
});
