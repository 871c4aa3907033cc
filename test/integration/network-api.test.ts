// Network security, control plane: firewall rules, virtual networks and subnets, VNet rules,
// private endpoint connections and the access check, through the real CLI and the REST API of
// a real platform (catalog and managed servers are real PostgreSQL).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { auditEvents, until, type TestPlatform } from '../helpers/platform.js';
import { PrivateEndpointsRepo } from '../../src/catalog/private-endpoints-repo.js';
import { networkCalls, startNetworkPlatform } from './network-calls.js';

let t: TestPlatform;
const RULES = '/servers/net-a/firewallRules';
const { cli, ok, json, fails, refused, failsInCli } = networkCalls(() => t);

before(async () => {
  t = await startNetworkPlatform();
});
after(async () => {
  await t?.stop();
});

test('firewall rules: create, list, show, update, delete through the CLI and the API', async () => {
  const fw = ['server', 'firewall-rule'];
  const created = await json([...fw, 'create', '--server', 'net-a', '--name', 'office', '--start-ip-address', '10.0.0.1', '--end-ip-address', '10.0.0.255']);
  assert.deepEqual(
    { id: created.id, name: created.name, start: created.startIpAddress, end: created.endIpAddress },
    { id: '/servers/net-a/firewallRules/office', name: 'office', start: '10.0.0.1', end: '10.0.0.255' },
  );
  // Canonical text: IPv6 per RFC 5952, IPv4-mapped IPv6 as IPv4.
  const v6 = await json([
    ...fw,
    'create',
    '--server',
    'net-a',
    '--name',
    'v6_lab',
    '--start-ip-address',
    '2001:DB8:0:0::1',
    '--end-ip-address',
    '2001:db8:0000::ffff',
  ]);
  assert.equal(v6.startIpAddress, '2001:db8::1');
  assert.equal(v6.endIpAddress, '2001:db8::ffff');
  const mapped = await t.api<Record<string, string>>('POST', RULES, { name: 'mapped', startIpAddress: '::ffff:192.0.2.1', endIpAddress: '::ffff:192.0.2.9' });
  assert.equal(mapped.startIpAddress, '192.0.2.1');
  assert.equal(mapped.endIpAddress, '192.0.2.9');

  const list = await ok([...fw, 'list', '--server', 'net-a']);
  assert.match(list, /^name\s+startIpAddress\s+endIpAddress/m);
  assert.match(list, /mapped\s+192\.0\.2\.1\s+192\.0\.2\.9\n\s*office\s+10\.0\.0\.1\s+10\.0\.0\.255\n\s*v6_lab\s+2001:db8::1\s+2001:db8::ffff/);
  assert.match(await ok([...fw, 'show', '--server', 'net-a', '--name', 'office']), /endIpAddress\s+10\.0\.0\.255/);

  const updated = await json([...fw, 'update', '--server', 'net-a', '--name', 'office', '--end-ip-address', '10.0.1.255']);
  assert.equal(updated.startIpAddress, '10.0.0.1');
  assert.equal(updated.endIpAddress, '10.0.1.255');
  await fails(
    [...fw, 'update', '--server', 'net-a', '--name', 'office', '--start-ip-address', '10.0.2.0'],
    400,
    /must be less than or equal to endIpAddress "10\.0\.1\.255"/,
  );
  await fails(
    [...fw, 'update', '--server', 'net-a', '--name', 'nope', '--end-ip-address', '10.0.0.1'],
    404,
    /Firewall rule 'nope' of server 'net-a' was not found/,
  );

  const dup = await t.apiStatus('POST', RULES, { name: 'office', startIpAddress: '1.1.1.1', endIpAddress: '1.1.1.1' });
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.body, { error: { code: 'Conflict', message: "A firewall rule named 'office' already exists on server 'net-a'." } });
  // PUT: create (201), then replace (200).
  const put1 = await t.apiStatus('PUT', `${RULES}/edge`, { startIpAddress: '198.51.100.0', endIpAddress: '198.51.100.7' });
  assert.equal(put1.status, 200); // callApi reports every 2xx as 200
  assert.equal(
    (await t.api<{ endIpAddress: string }>('PUT', `${RULES}/edge`, { startIpAddress: '198.51.100.0', endIpAddress: '198.51.100.15' })).endIpAddress,
    '198.51.100.15',
  );
  assert.equal((await t.api<{ value: unknown[] }>('GET', RULES)).value.length, 4);

  assert.match(await ok([...fw, 'delete', '--server', 'net-a', '--name', 'edge']), /Firewall rule 'edge' deleted\./);
  await fails([...fw, 'show', '--server', 'net-a', '--name', 'edge'], 404, /Firewall rule 'edge' of server 'net-a' was not found/);
  await refused('DELETE', `${RULES}/edge`, undefined, 404, /Firewall rule 'edge' of server 'net-a' was not found/);
  await fails([...fw, 'list', '--server', 'no-such'], 404, /Server 'no-such' was not found/);
  for (const name of ['office', 'v6_lab', 'mapped']) await t.api('DELETE', `${RULES}/${name}`);
  assert.equal((await ok([...fw, 'list', '--server', 'net-a'])).trim(), '(none)');
});

test('firewall rule validation errors are clear and change nothing', async () => {
  const cases: [string, string, string, RegExp][] = [
    ['r1', '10.0.0.256', '10.0.0.1', /startIpAddress "10\.0\.0\.256" is not a valid IPv4 or IPv6 address/],
    ['r1', '10.0.0.1', 'example.com', /endIpAddress "example\.com" is not a valid IPv4 or IPv6 address/],
    ['r1', '010.0.0.1', '10.0.0.2', /startIpAddress "010\.0\.0\.1" is not a valid/],
    ['r1', 'fe80::1%eth0', 'fe80::2', /is not a valid IPv4 or IPv6 address/],
    ['r1', '10.0.0.1', '::1', /is IPv4 but endIpAddress "::1" is IPv6: both must be the same family/],
    ['r1', '10.0.0.9', '10.0.0.1', /startIpAddress "10\.0\.0\.9" must be less than or equal to endIpAddress "10\.0\.0\.1"/],
    ['r1', '::2', '::1', /must be less than or equal/],
    ['bad name', '10.0.0.1', '10.0.0.1', /rule name "bad name" may only contain letters, digits, "-" and "_"/],
    ['r.1', '10.0.0.1', '10.0.0.1', /may only contain letters/],
    ['x'.repeat(129), '10.0.0.1', '10.0.0.1', /rule name is 129 characters long: at most 128 are allowed/],
  ];
  for (const [name, start, end, message] of cases) {
    const r = await t.apiStatus('POST', RULES, { name, startIpAddress: start, endIpAddress: end });
    assert.equal(r.status, 400, `${name} ${start} ${end}`);
    assert.equal((r.body as { error: { code: string } }).error.code, 'InvalidArgument');
    assert.match((r.body as { error: { message: string } }).error.message, message);
  }
  assert.equal(await ok(['server', 'firewall-rule', 'list', '--server', 'net-a']), '(none)\n');
  const extra = await t.apiStatus('POST', RULES, { name: 'r2', startIpAddress: '1.1.1.1', endIpAddress: '1.1.1.1', priority: 1 });
  assert.equal(extra.status, 400);
  assert.match(JSON.stringify(extra.body), /additional properties/);
  const empty = await t.apiStatus('PATCH', `${RULES}/r2`, {});
  assert.equal(empty.status, 400);
});

test('virtual networks and subnets: create, list, show, update, delete and their validation', async () => {
  const vnet = ['network', 'vnet'];
  const created = await json([...vnet, 'create', 'corp', '--address-prefix', '10.1.0.0/16', '--address-prefix', 'fd00:1::/48', '--listen', '127.0.0.11']);
  assert.deepEqual(created.addressPrefixes, ['10.1.0.0/16', 'fd00:1::/48']);
  assert.equal(created.listenAddress, '127.0.0.11');
  assert.deepEqual(created.subnets, []);
  await failsInCli([...vnet, 'create', 'corp', '--address-prefix', '10.9.0.0/16'], /A virtual network named 'corp' already exists: use 'network vnet update'/);
  await fails(
    [...vnet, 'create', 'other', '--address-prefix', '10.2.0.0/16', '--listen', '127.0.0.11'],
    409,
    /listenAddress 127\.0\.0\.11 is already used by virtual network 'corp'/,
  );
  const other = '/virtualNetworks/other';
  await refused('PUT', other, { addressPrefixes: ['10.2.0.0/16'], listenAddress: '::ffff:127.0.0.11' }, 409, /already used by virtual network 'corp'/);
  await refused(
    'PUT',
    other,
    { addressPrefixes: ['10.2.0.0/16'], listenAddress: '127.0.0.300' },
    400,
    /listenAddress "127\.0\.0\.300" is not a valid IPv4 or IPv6 address/,
  );
  await refused('PUT', other, { addressPrefixes: ['10.2.0.0/16'], listenAddress: '::' }, 400, /unspecified address/);
  await refused('PUT', other, { addressPrefixes: ['10.2.0.1/16'] }, 400, /has host bits set: the block starts at 10\.2\.0\.0\/16/);
  await refused('PUT', other, { addressPrefixes: ['10.2.0.0/33'] }, 400, /prefix length "33"/);
  await refused('PUT', other, { addressPrefixes: ['10.2.0.0/16', '10.2.128.0/17'] }, 400, /10\.2\.128\.0\/17 overlaps 10\.2\.0\.0\/16/);
  await refused('PUT', '/virtualNetworks/Public', { addressPrefixes: ['10.2.0.0/16'] }, 400, /names a gateway listener kind/);
  await refused('PUT', '/virtualNetworks/private-link', { addressPrefixes: ['10.2.0.0/16'] }, 400, /names a gateway listener kind/);
  await fails([...vnet, 'create', 'bad.', '--address-prefix', '10.2.0.0/16'], 400, /Invalid virtual network name 'bad\.'/);
  const dash = await t.apiStatus('PUT', '/virtualNetworks/-bad', { addressPrefixes: ['10.2.0.0/16'] });
  assert.equal(dash.status, 400);
  assert.match(JSON.stringify(dash.body), /Invalid virtual network name '-bad': it must be 1 to 64 letters, digits/);
  assert.equal((await t.apiStatus('PUT', '/virtualNetworks/other', { addressPrefixes: [] })).status, 400);

  const sub = [...vnet, 'subnet'];
  const web = await json([...sub, 'create', '--vnet', 'corp', '--name', 'web', '--address-prefix', '10.1.1.0/24', '--service-endpoint']);
  assert.deepEqual(
    { id: web.id, addressPrefix: web.addressPrefix, serviceEndpoint: web.serviceEndpoint },
    { id: 'corp/subnets/web', addressPrefix: '10.1.1.0/24', serviceEndpoint: true },
  );
  const db = await json([...sub, 'create', '--vnet', 'corp', '--name', 'db', '--address-prefix', 'FD00:1:0:2::/64']);
  assert.equal(db.addressPrefix, 'fd00:1:0:2::/64');
  assert.equal(db.serviceEndpoint, false);
  await fails(
    [...sub, 'create', '--vnet', 'corp', '--name', 'out', '--address-prefix', '10.2.0.0/24'],
    400,
    /addressPrefix 10\.2\.0\.0\/24 is not inside the address space of virtual network 'corp' \(10\.1\.0\.0\/16, fd00:1::\/48\)/,
  );
  await refused('PUT', '/virtualNetworks/corp/subnets/wide', { addressPrefix: '10.0.0.0/8' }, 400, /is not inside the address space/);
  await fails(
    [...sub, 'create', '--vnet', 'corp', '--name', 'clash', '--address-prefix', '10.1.1.128/25'],
    409,
    /overlaps subnet 'web' \(10\.1\.1\.0\/24\) of virtual network 'corp'/,
  );
  await refused('PUT', '/virtualNetworks/corp/subnets/clash', { addressPrefix: '10.1.0.0/20' }, 409, /overlaps subnet 'web'/);
  await refused('PUT', '/virtualNetworks/nowhere/subnets/x', { addressPrefix: '10.1.1.0/24' }, 404, /Virtual network 'nowhere' was not found/);
  await refused('PUT', '/virtualNetworks/corp/subnets/bad%20name', { addressPrefix: '10.1.3.0/24' }, 400, /Invalid subnet name 'bad name'/);
  await failsInCli(
    [...sub, 'create', '--vnet', 'corp', '--name', 'web', '--address-prefix', '10.1.9.0/24'],
    /Subnet 'web' of virtual network 'corp' already exists/,
  );

  const on = await t.api<{ serviceEndpoint: boolean }>('PATCH', '/virtualNetworks/corp/subnets/db', { serviceEndpoint: true });
  assert.equal(on.serviceEndpoint, true);
  assert.equal((await json([...sub, 'update', '--vnet', 'corp', '--name', 'db', '--service-endpoint', 'false'])).serviceEndpoint, false);
  assert.match(await ok([...sub, 'list', '--vnet', 'corp']), /corp\/subnets\/db\s+fd00:1:0:2::\/64\s+false\n\s*corp\/subnets\/web\s+10\.1\.1\.0\/24\s+true/);
  assert.match(await ok([...vnet, 'list']), /corp\s+10\.1\.0\.0\/16,fd00:1::\/48\s+127\.0\.0\.11\s+2/);
  assert.match(await ok([...vnet, 'show', 'corp']), /listenAddress\s+127\.0\.0\.11/);

  // Shrinking the address space may not strand a subnet; moving the listener is fine.
  await fails(
    [...vnet, 'update', 'corp', '--address-prefix', '10.1.0.0/16'],
    409,
    /Subnet 'db' \(fd00:1:0:2::\/64\) would lie outside the address prefixes of virtual network 'corp'/,
  );
  assert.equal((await json([...vnet, 'update', 'corp', '--listen', '::1'])).listenAddress, '::1');
  assert.equal((await json([...vnet, 'update', 'corp', '--no-listen'])).listenAddress, null);
  assert.equal((await t.api<{ listenAddress: string }>('PATCH', '/virtualNetworks/corp', { listenAddress: '127.0.0.11' })).listenAddress, '127.0.0.11');

  await ok([...sub, 'delete', '--vnet', 'corp', '--name', 'db']);
  await refused('GET', '/virtualNetworks/corp/subnets/db', undefined, 404, /Subnet 'db' of virtual network 'corp' was not found/);
  await t.api('PUT', '/virtualNetworks/scratch', { addressPrefixes: ['192.168.0.0/24'] });
  await t.api('PUT', '/virtualNetworks/scratch/subnets/s1', { addressPrefix: '192.168.0.0/25' });
  assert.match(await ok([...vnet, 'delete', 'scratch']), /Virtual network 'scratch' deleted\./);
  await fails([...vnet, 'show', 'scratch'], 404, /Virtual network 'scratch' was not found/);
  assert.equal((await t.api<{ value: unknown[] }>('GET', '/virtualNetworks')).value.length, 1);
});

test('vnet rules: service endpoint required unless ignored, state follows the subnet', async () => {
  const vr = ['server', 'vnet-rule'];
  await t.api('PUT', '/virtualNetworks/corp/subnets/plain', { addressPrefix: '10.1.2.0/24' });
  await fails(
    [...vr, 'create', '--server', 'net-a', '--name', 'plain-rule', '--subnet', 'corp/subnets/plain'],
    400,
    /Subnet 'corp\/subnets\/plain' does not have the service endpoint enabled\. Enable it on the subnet, or set ignoreMissingVnetServiceEndpoint/,
  );
  const vnetRules = '/servers/net-a/virtualNetworkRules';
  await refused('POST', vnetRules, { name: 'ghost', virtualNetworkSubnetId: 'corp/subnets/ghost' }, 400, /Subnet 'corp\/subnets\/ghost' does not exist/);
  await refused('POST', vnetRules, { name: 'odd', virtualNetworkSubnetId: 'corp-web' }, 400, /must have the form \{virtualNetwork\}\/subnets\/\{subnet\}/);
  await refused('POST', vnetRules, { name: 'bad name', virtualNetworkSubnetId: 'corp/subnets/web' }, 400, /rule name "bad name" may only contain/);

  const web = await json([...vr, 'create', '--server', 'net-a', '--name', 'web-rule', '--subnet', 'corp/subnets/web']);
  assert.deepEqual(
    { id: web.id, subnet: web.virtualNetworkSubnetId, ignore: web.ignoreMissingVnetServiceEndpoint, state: web.state },
    { id: '/servers/net-a/virtualNetworkRules/web-rule', subnet: 'corp/subnets/web', ignore: false, state: 'Ready' },
  );
  const plain = await json([...vr, 'create', '--server', 'net-a', '--name', 'plain-rule', '--subnet', 'corp/subnets/plain', '--ignore-missing-endpoint']);
  assert.equal(plain.state, 'Ready');
  assert.equal(plain.ignoreMissingVnetServiceEndpoint, true);
  await fails(
    [...vr, 'create', '--server', 'net-a', '--name', 'web-rule', '--subnet', 'corp/subnets/web'],
    409,
    /A virtual network rule named 'web-rule' already exists on server 'net-a'/,
  );

  // The subnet goes away: the rule stays, Unknown.
  await t.api('DELETE', '/virtualNetworks/corp/subnets/plain');
  assert.match(
    await ok([...vr, 'list', '--server', 'net-a']),
    /plain-rule\s+corp\/subnets\/plain\s+true\s+Unknown\n\s*web-rule\s+corp\/subnets\/web\s+false\s+Ready/,
  );
  assert.match(await ok([...vr, 'show', '--server', 'net-a', '--name', 'plain-rule']), /state\s+Unknown/);
  // The service endpoint switched off under a rule that needs it: not in force.
  await ok(['network', 'vnet', 'subnet', 'update', '--vnet', 'corp', '--name', 'web', '--service-endpoint', 'false']);
  assert.equal((await t.api<{ state: string }>('GET', '/servers/net-a/virtualNetworkRules/web-rule')).state, 'Initializing');
  await t.api('PATCH', '/virtualNetworks/corp/subnets/web', { serviceEndpoint: true });
  assert.match(await ok([...vr, 'delete', '--server', 'net-a', '--name', 'plain-rule']), /Virtual network rule 'plain-rule' deleted\./);
  await fails([...vr, 'show', '--server', 'net-a', '--name', 'plain-rule'], 404, /Virtual network rule 'plain-rule' of server 'net-a' was not found/);
  await t.api('DELETE', `${vnetRules}/web-rule`);
});

test('private endpoint connections: register, approve, reject, delete; the gateway registers Pending ones', async () => {
  const pe = ['server', 'private-endpoint-connection'];
  const created = await json([...pe, 'create', '--server', 'net-a', '--id', '4294967295', '--description', 'app subnet']);
  assert.deepEqual(
    { id: created.id, name: created.name, endpoint: created.privateEndpoint, status: created.status, description: created.description },
    {
      id: '/servers/net-a/privateEndpointConnections/4294967295',
      name: '4294967295',
      endpoint: { id: '4294967295', kind: 'azure-private-link' },
      status: 'Pending',
      description: 'app subnet',
    },
  );
  await fails([...pe, 'create', '--server', 'net-a', '--id', '4294967296'], 400, /Invalid private endpoint id '4294967296'/);
  for (const bad of ['007', '-1', 'vpce-', 'vpce-ABC', 'vpc-123']) {
    await refused('PUT', `/servers/net-a/privateEndpointConnections/${bad}`, {}, 400, /Invalid private endpoint id/);
  }
  const wrongKind = await t.apiStatus('PUT', '/servers/net-a/privateEndpointConnections/42', { privateEndpoint: { kind: 'aws-vpc-endpoint' } });
  assert.equal(wrongKind.status, 400);
  assert.match(JSON.stringify(wrongKind.body), /is of kind azure-private-link, not aws-vpc-endpoint/);

  // What the gateway calls when a connection carries an identity it has not seen.
  const repo = new PrivateEndpointsRepo(t.platform.db);
  assert.equal(await repo.registerPending('net-a', 'vpce-0123456789abcdef0', 'aws-vpc-endpoint'), true);
  assert.equal(await repo.registerPending('net-a', 'vpce-0123456789abcdef0', 'aws-vpc-endpoint'), false);
  assert.equal(await repo.registerPending('net-a', '4294967295', 'azure-private-link'), false);
  assert.equal(await repo.registerPending('no-such', '17', 'azure-private-link'), false);
  assert.equal(await repo.registerPending('net-a', 'vpce-x', 'azure-private-link'), false);

  assert.match(
    await ok([...pe, 'list', '--server', 'net-a']),
    /4294967295\s+azure-private-link\s+Pending\s+app subnet.*\n\s*vpce-0123456789abcdef0\s+aws-vpc-endpoint\s+Pending/,
  );
  const approved = await json([...pe, 'approve', '--server', 'net-a', '--id', 'vpce-0123456789abcdef0', '--description', 'ticket 42']);
  assert.equal(approved.status, 'Approved');
  assert.equal(approved.description, 'ticket 42');
  const rejected = await json([...pe, 'reject', '--server', 'net-a', '--id', '4294967295']);
  assert.equal(rejected.status, 'Rejected');
  assert.equal(rejected.description, 'app subnet');
  assert.match(await ok([...pe, 'show', '--server', 'net-a', '--id', 'vpce-0123456789abcdef0']), /status\s+Approved/);
  // Approval without a body through the API works too.
  assert.equal((await t.api<{ status: string }>('POST', '/servers/net-a/privateEndpointConnections/4294967295/approve')).status, 'Approved');
  await fails([...pe, 'approve', '--server', 'net-a', '--id', '12'], 404, /Private endpoint connection '12' of server 'net-a' was not found/);
  assert.match(await ok([...pe, 'delete', '--server', 'net-a', '--id', '4294967295']), /Private endpoint connection '4294967295' deleted\./);
  await t.api('DELETE', '/servers/net-a/privateEndpointConnections/vpce-0123456789abcdef0');
  assert.equal(await ok([...pe, 'list', '--server', 'net-a']), '(none)\n');
});

test('public network access Disabled: firewall and VNet rule changes are refused with 409, deletes allowed', async () => {
  await t.api('PUT', `${RULES}/keep`, { startIpAddress: '10.9.9.9', endIpAddress: '10.9.9.9' });
  await t.api('PUT', '/servers/net-a/virtualNetworkRules/keep', { virtualNetworkSubnetId: 'corp/subnets/web' });
  await t.api('PATCH', '/servers/net-a', { publicNetworkAccess: 'Disabled' });
  const expected = {
    error: {
      code: 'Conflict',
      message:
        "Public network access is disabled for server 'net-a': firewall and virtual network rules cannot be changed. Enable public network access first.",
    },
  };
  const attempts: [string, string, unknown][] = [
    ['POST', RULES, { name: 'new', startIpAddress: '10.0.0.1', endIpAddress: '10.0.0.1' }],
    ['PUT', `${RULES}/new`, { startIpAddress: '10.0.0.1', endIpAddress: '10.0.0.1' }],
    ['PATCH', `${RULES}/keep`, { endIpAddress: '10.9.9.10' }],
    ['POST', '/servers/net-a/virtualNetworkRules', { name: 'new', virtualNetworkSubnetId: 'corp/subnets/web' }],
    ['PUT', '/servers/net-a/virtualNetworkRules/new', { virtualNetworkSubnetId: 'corp/subnets/web' }],
  ];
  for (const [method, route, body] of attempts) {
    const r = await t.apiStatus(method, route, body);
    assert.equal(r.status, 409, `${method} ${route}`);
    assert.deepEqual(r.body, expected);
  }
  await fails(
    ['server', 'firewall-rule', 'create', '--server', 'net-a', '--name', 'cli', '--start-ip-address', '1.1.1.1', '--end-ip-address', '1.1.1.1'],
    409,
    /Public network access is disabled for server 'net-a'/,
  );
  // Private endpoints are the way in while it is off: they can still be managed.
  await t.api('PUT', '/servers/net-a/privateEndpointConnections/7', { status: 'Approved' });
  await t.api('DELETE', '/servers/net-a/privateEndpointConnections/7');
  await ok(['server', 'firewall-rule', 'delete', '--server', 'net-a', '--name', 'keep']);
  await t.api('DELETE', '/servers/net-a/virtualNetworkRules/keep');
  await t.api('PATCH', '/servers/net-a', { publicNetworkAccess: 'Enabled' });
  await t.api('PUT', `${RULES}/cli`, { startIpAddress: '1.1.1.1', endIpAddress: '1.1.1.1' });
  await t.api('DELETE', `${RULES}/cli`);
});

test('RBAC: a Reader cannot change network rules, a SecurityAdmin can; the admin action names who', async () => {
  const reader = (await ok(['token', 'create', '--role', 'Reader'])).trim();
  const security = (await ok(['token', 'create', '--role', 'SecurityAdmin'])).trim();
  const as = (token: string) => ({ PGWARDEN_API_URL: t.target.url, PGWARDEN_TOKEN: token, PGWARDEN_CA_FILE: t.platform.paths.caCert });
  const create = [
    'server',
    'firewall-rule',
    'create',
    '--server',
    'net-a',
    '--name',
    'by-secadmin',
    '--start-ip-address',
    '203.0.113.1',
    '--end-ip-address',
    '203.0.113.2',
  ];

  const denied = await cli(create, as(reader));
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /403 Forbidden\): The Reader role is not allowed to perform this operation\./);
  assert.equal((await cli(['server', 'firewall-rule', 'list', '--server', 'net-a'], as(reader))).code, 0);
  assert.equal((await t.apiStatus('PUT', '/virtualNetworks/x', { addressPrefixes: ['10.0.0.0/8'] }, reader)).status, 403);
  assert.equal((await t.apiStatus('POST', '/servers/net-b/privateEndpointConnections/1234/reject', {}, reader)).status, 403);

  const allowed = await cli(create, as(security));
  assert.equal(allowed.code, 0, allowed.stderr);
  const upd = await cli(['server', 'firewall-rule', 'update', '--server', 'net-a', '--name', 'by-secadmin', '--end-ip-address', '203.0.113.9'], as(security));
  assert.equal(upd.code, 0, upd.stderr);

  // The admin action is recorded after the response is sent (and written by the audit thread).
  const actions = await until(
    'the firewall rule admin actions in the audit log',
    async () => {
      const found = auditEvents(t).filter((e) => e.type === 'admin.action' && String(e.action).startsWith('firewallRule.'));
      return found.some((e) => e.action === 'firewallRule.update' && e.target === '/servers/net-a/firewallRules/by-secadmin') && found;
    },
    10_000,
    50,
  );
  const created = actions.find(
    (e) =>
      e.action === 'firewallRule.create' &&
      e.target === '/servers/net-a/firewallRules/by-secadmin' &&
      e.outcome === 'success' &&
      (e.actor as { role: string }).role === 'SecurityAdmin',
  );
  assert.ok(created, 'firewallRule.create by the SecurityAdmin');
  const refused = actions.find((e) => e.action === 'firewallRule.create' && e.outcome === 'failure' && (e.actor as { role: string }).role === 'Reader');
  assert.ok(refused, 'the refused attempt is recorded too');
  const updated = actions.find((e) => e.action === 'firewallRule.update' && e.target === '/servers/net-a/firewallRules/by-secadmin');
  assert.ok(updated, 'firewallRule.update names the rule');
  assert.equal((updated.actor as { role: string }).role, 'SecurityAdmin');
  assert.equal(updated.outcome, 'success');
});

test('the OpenAPI document describes the network resources', async () => {
  const doc = await t.api<{ paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json');
  for (const [path, method] of [
    ['/servers/{name}/firewallRules', 'post'],
    ['/servers/{name}/firewallRules/{rule}', 'patch'],
    ['/servers/{name}/virtualNetworkRules/{rule}', 'put'],
    ['/servers/{name}/privateEndpointConnections/{rule}/approve', 'post'],
    ['/servers/{name}/accessCheck', 'get'],
    ['/virtualNetworks/{vnet}', 'put'],
    ['/virtualNetworks/{vnet}/subnets/{subnet}', 'patch'],
  ] as const) {
    assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
  }
});
