// Network security, control plane: the access check (the decision, the rule that made it, the
// exact client error) and the catalog state and change feed the gateway follows, through the real
// CLI and the REST API of a real platform.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestPlatform } from '../helpers/platform.js';
import { loadNetworkState } from '../../src/network/state.js';
import { networkCalls, startNetworkPlatform } from './network-calls.js';

let t: TestPlatform;
const { ok, json, fails, refused } = networkCalls(() => t);

before(async () => {
  t = await startNetworkPlatform();
  // The virtual network the access check's listener is (as network-api.test.ts leaves it).
  await t.api('PUT', '/virtualNetworks/corp', { addressPrefixes: ['10.1.0.0/16', 'fd00:1::/48'], listenAddress: '127.0.0.11' });
  await t.api('PUT', '/virtualNetworks/corp/subnets/web', { addressPrefix: '10.1.1.0/24', serviceEndpoint: true });
});
after(async () => {
  await t?.stop();
});

test('access check: the decision, the rule that made it or is missing, and the exact client error', async () => {
  const check = (...args: string[]) => ok(['access', 'check', '--server', 'net-b', ...args]);
  const noRule = await check('--ip', '10.0.0.5', '--user', 'u', '--database', 'd');
  assert.match(noRule, /^deny\n/);
  assert.match(noRule, /reason\s+no-firewall-rule/);
  assert.match(noRule, /explanation\s+No firewall rule of server 'net-b' covers 10\.0\.0\.5/);
  assert.match(noRule, /sqlstate\s+28000/);
  assert.match(noRule, /error\s+no pg_hba\.conf entry for host "10\.0\.0\.5", user "u", database "d", SSL on\n/);
  // Defaults: the administrator, its own database; --no-ssl.
  assert.match(await check('--ip', '10.0.0.5', '--no-ssl'), /no pg_hba\.conf entry for host "10\.0\.0\.5", user "bob", database "bob", SSL off/);

  await t.api('PUT', '/servers/net-b/firewallRules/lan', { startIpAddress: '10.0.0.0', endIpAddress: '10.0.0.255' });
  await t.api('PUT', '/servers/net-b/firewallRules/v6', { startIpAddress: '2001:db8::', endIpAddress: '2001:db8::ffff' });
  const allowed = await check('--ip', '10.0.0.5');
  assert.match(allowed, /^allow\n/);
  assert.match(allowed, /reason\s+firewall-rule\n\s*rule\s+lan\n/);
  assert.doesNotMatch(allowed, /error/);
  assert.match(await check('--ip', '::ffff:10.0.0.200'), /^allow\n[\s\S]*rule\s+lan/); // IPv4-mapped is judged as IPv4
  assert.match(await check('--ip', '2001:db8::1'), /^allow\n[\s\S]*rule\s+v6/);
  assert.match(
    await check('--ip', '2001:db8::1:0', '--user', 'u', '--database', 'd'),
    /^deny\n[\s\S]*no pg_hba\.conf entry for host "2001:db8::1:0", user "u", database "d", SSL on/,
  );

  // A virtual network listener: the client's subnet has the service endpoint and no VNet rule
  // names it, so the IP rule that covers 10.1.1.5... does not apply.
  await t.api('PUT', '/servers/net-b/firewallRules/corp-ips', { startIpAddress: '10.1.0.0', endIpAddress: '10.1.255.255' });
  const vnetDenied = await check('--ip', '10.1.1.5', '--listener', 'corp');
  assert.match(vnetDenied, /^deny\n/);
  assert.match(vnetDenied, /reason\s+vnet-not-allowed\n\s*subnet\s+corp\/subnets\/web/);
  assert.match(vnetDenied, /no virtual network rule of server 'net-b' names it/);
  assert.match(vnetDenied, /error\s+Client from Virtual Networks is not allowed to access the server\.\n/);
  // Outside any subnet of the network: IP rules apply.
  assert.match(await check('--ip', '10.1.200.1', '--listener', 'corp'), /^allow\n[\s\S]*rule\s+corp-ips/);
  await t.api('PUT', '/servers/net-b/virtualNetworkRules/web-in', { virtualNetworkSubnetId: 'corp/subnets/web' });
  const vnetAllowed = await check('--ip', '10.1.1.5', '--listener', 'corp');
  assert.match(vnetAllowed, /^allow\n\s*reason\s+vnet-rule\n\s*rule\s+web-in\n\s*subnet\s+corp\/subnets\/web/);
  // The same through the API, and the alias under `server`.
  const api = await t.api<Record<string, unknown>>('GET', '/servers/net-b/accessCheck?ip=10.1.1.5&listener=corp');
  assert.equal(api.allow, true);
  assert.equal(api.rule, 'web-in');
  assert.match(await ok(['server', 'access', 'check', '--server', 'net-b', '--ip', '10.0.0.7']), /^allow\n[\s\S]*rule\s+lan/);
  await fails(['access', 'check', '--server', 'net-b', '--ip', '10.0.0.7', '--listener', 'nowhere'], 400, /Unknown listener 'nowhere'/);
  await refused('GET', '/servers/net-b/accessCheck?ip=10.0.0.999', undefined, 400, /ip "10\.0\.0\.999" is not a valid/);
  await refused('GET', '/servers/no-such/accessCheck?ip=10.0.0.7', undefined, 404, /Server 'no-such' was not found/);
  await refused('GET', '/servers/net-b/accessCheck?ip=10.0.0.7&port=5432', undefined, 400, /additional properties/);

  // Private endpoints: unknown, pending, approved.
  const link = (id: string) => check('--ip', '192.0.2.10', '--listener', 'private-link', '--endpoint', id);
  const unknown = await link('1234');
  assert.match(unknown, /^deny\n\s*reason\s+private-endpoint-unknown/);
  assert.match(unknown, /error\s+Private endpoint connection is not approved for this server\./);
  await t.api('PUT', '/servers/net-b/privateEndpointConnections/1234');
  assert.match(
    await link('1234'),
    /^deny\n\s*reason\s+private-endpoint-not-approved\n[\s\S]*is not Approved: approve it[\s\S]*error\s+Private endpoint connection is not approved for this server\./,
  );
  await t.api('POST', '/servers/net-b/privateEndpointConnections/1234/approve', { description: 'ok' });
  assert.match(await link('1234'), /^allow\n\s*reason\s+private-endpoint\n\s*rule\s+1234/);
  await refused('GET', '/servers/net-b/accessCheck?ip=192.0.2.10&listener=private-link', undefined, 400, /needs an endpoint id/);

  // Public access off: only the approved endpoint gets in.
  await t.api('PATCH', '/servers/net-b', { publicNetworkAccess: 'Disabled' });
  const off = await check('--ip', '10.0.0.5');
  assert.match(off, /^deny\n\s*reason\s+public-access-disabled/);
  assert.match(off, /error\s+Public network access is denied for this server\. Connect through an approved private endpoint\./);
  assert.match(await link('1234'), /^allow/);
  await t.api('PATCH', '/servers/net-b', { publicNetworkAccess: 'Enabled' });
  const asJson = await json(['access', 'check', '--server', 'net-b', '--ip', '10.9.0.1', '--user', 'u', '--database', 'd']);
  assert.deepEqual(asJson.error, { sqlstate: '28000', message: 'no pg_hba.conf entry for host "10.9.0.1", user "u", database "d", SSL on' });
});

test('the catalog state the gateway loads, and the change feed it follows', async () => {
  const listener = await t.platform.db.connect();
  const notes: string[] = [];
  listener.on('notification', (n) => notes.push(n.payload ?? ''));
  await listener.query('listen pgwarden_changes');
  try {
    await t.api('PUT', '/servers/net-b/firewallRules/feed', { startIpAddress: '172.16.0.0', endIpAddress: '172.16.0.9' });
    const deadline = Date.now() + 5000;
    while (!notes.some((n) => n.includes('firewall_rules')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(JSON.parse(notes.find((n) => n.includes('firewall_rules'))!), { table: 'firewall_rules', op: 'INSERT' });
  } finally {
    await listener.query('unlisten pgwarden_changes');
    listener.release();
  }
  const state = await loadNetworkState(t.platform.db);
  const b = state.servers.get('net-b')!;
  assert.equal(b.publicNetworkAccess, 'Enabled');
  assert.equal(b.firewall.match('172.16.0.5'), 'feed');
  assert.equal(b.firewall.match('10.0.0.1'), 'lan');
  assert.equal(b.firewall.match('192.168.0.1'), null);
  assert.deepEqual(b.vnetRules, [{ name: 'web-in', virtualNetworkSubnetId: 'corp/subnets/web', ignoreMissingVnetServiceEndpoint: false }]);
  assert.deepEqual([...b.privateEndpoints], [['1234', { status: 'Approved' }]]);
  assert.equal(state.servers.get('net-a')!.firewall.match('10.0.0.1'), null);
  const corp = state.vnets.get('corp')!;
  assert.equal(corp.listenAddress, '127.0.0.11');
  assert.deepEqual(corp.addressPrefixes, ['10.1.0.0/16', 'fd00:1::/48']);
  assert.deepEqual(corp.subnets, [{ id: 'corp/subnets/web', name: 'web', addressPrefix: '10.1.1.0/24', serviceEndpoint: true }]);
  assert.deepEqual(state.problems, []);
});
