import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientErrors, noFirewallRule } from '../../../src/pgwire/client-errors.js';
import {
  decideNetworkAccess,
  type ConnectionFacts,
  type ListenerFacts,
  type NetworkSnapshot,
  type PrivateEndpointStatus,
  type VnetRule,
} from '../../../src/network/decide.js';
import { buildFirewallIndex, type FirewallRule } from '../../../src/network/firewall-index.js';
import { findSubnet, type VirtualNetwork } from '../../../src/network/vnet.js';

const vnet: VirtualNetwork = {
  name: 'vnet1',
  subnets: [
    { id: 'vnet1/subnets/web', name: 'web', addressPrefix: '10.1.1.0/24', serviceEndpoint: true },
    { id: 'vnet1/subnets/batch', name: 'batch', addressPrefix: '10.1.2.0/24', serviceEndpoint: false },
    { id: 'vnet1/subnets/v6', name: 'v6', addressPrefix: 'fd00:1::/64', serviceEndpoint: true },
  ],
};

function server(
  options: {
    publicNetworkAccess?: 'Enabled' | 'Disabled';
    firewall?: FirewallRule[];
    vnetRules?: VnetRule[];
    endpoints?: [string, PrivateEndpointStatus][];
  } = {},
): NetworkSnapshot {
  return {
    publicNetworkAccess: options.publicNetworkAccess ?? 'Enabled',
    firewall: buildFirewallIndex(options.firewall ?? []),
    vnetRules: options.vnetRules ?? [],
    privateEndpoints: new Map((options.endpoints ?? []).map(([id, status]) => [id, { status }])),
  };
}

function conn(clientAddress: string, listener: ListenerFacts = { kind: 'public' }, ssl = true): ConnectionFacts {
  return { clientAddress, listener, user: 'alice', database: 'app', ssl };
}

function fromVnet(clientAddress: string): ConnectionFacts {
  return conn(clientAddress, { kind: 'private', vnet: 'vnet1', subnet: findSubnet(vnet, clientAddress) });
}

const office: FirewallRule = { name: 'office', startIpAddress: '203.0.113.0', endIpAddress: '203.0.113.255' };
const vnetWide: FirewallRule = { name: 'vnet-wide', startIpAddress: '10.0.0.0', endIpAddress: '10.255.255.255' };

describe('decideNetworkAccess: IP firewall (public listener)', () => {
  it('allows an address covered by a rule and names it', () => {
    assert.deepEqual(decideNetworkAccess(conn('203.0.113.7'), server({ firewall: [office] })), {
      allow: true,
      reason: 'firewall-rule',
      rule: 'office',
    });
  });

  it('denies an uncovered address with the exact pg_hba-style error', () => {
    assert.deepEqual(decideNetworkAccess(conn('198.51.100.1', { kind: 'public' }, false), server({ firewall: [office] })), {
      allow: false,
      reason: 'no-firewall-rule',
      error: { sqlstate: '28000', message: 'no pg_hba.conf entry for host "198.51.100.1", user "alice", database "app", SSL off' },
    });
  });

  it('denies everything when there are no rules (deny by default)', () => {
    const verdict = decideNetworkAccess(conn('127.0.0.1'), server());
    assert.deepEqual(verdict, { allow: false, reason: 'no-firewall-rule', error: noFirewallRule('127.0.0.1', 'alice', 'app', true) });
  });

  it('judges IPv4-mapped IPv6 as IPv4 and shows the IPv4 address', () => {
    const s = server({ firewall: [office] });
    assert.deepEqual(decideNetworkAccess(conn('::ffff:203.0.113.9'), s), { allow: true, reason: 'firewall-rule', rule: 'office' });
    assert.deepEqual(decideNetworkAccess(conn('::ffff:198.51.100.1'), s), {
      allow: false,
      reason: 'no-firewall-rule',
      error: noFirewallRule('198.51.100.1', 'alice', 'app', true),
    });
  });

  it('handles IPv6 and ::1', () => {
    const s = server({ firewall: [{ name: 'loop6', startIpAddress: '::1', endIpAddress: '::1' }] });
    assert.deepEqual(decideNetworkAccess(conn('::1'), s), { allow: true, reason: 'firewall-rule', rule: 'loop6' });
    assert.deepEqual(decideNetworkAccess(conn('0:0::0001'), s), { allow: true, reason: 'firewall-rule', rule: 'loop6' });
    assert.deepEqual(decideNetworkAccess(conn('2001:DB8::1'), s), {
      allow: false,
      reason: 'no-firewall-rule',
      error: noFirewallRule('2001:db8::1', 'alice', 'app', true),
    });
    assert.deepEqual(decideNetworkAccess(conn('127.0.0.1'), s).allow, false);
  });

  it('denies an address that does not parse, showing it as received', () => {
    const s = server({ firewall: [{ name: 'all', startIpAddress: '0.0.0.0', endIpAddress: '255.255.255.255' }] });
    assert.deepEqual(decideNetworkAccess(conn('fe80::1%eth0'), s), {
      allow: false,
      reason: 'no-firewall-rule',
      error: noFirewallRule('fe80::1%eth0', 'alice', 'app', true),
    });
  });
});

describe('decideNetworkAccess: public network access Disabled', () => {
  it('refuses public traffic even when a firewall rule covers it', () => {
    const s = server({ publicNetworkAccess: 'Disabled', firewall: [office] });
    assert.deepEqual(decideNetworkAccess(conn('203.0.113.7'), s), {
      allow: false,
      reason: 'public-access-disabled',
      error: clientErrors.publicAccessDisabled,
    });
  });

  it('refuses VNet traffic even when a VNet rule covers it', () => {
    const s = server({
      publicNetworkAccess: 'Disabled',
      vnetRules: [{ name: 'web', virtualNetworkSubnetId: 'vnet1/subnets/web', ignoreMissingVnetServiceEndpoint: false }],
    });
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.1.5'), s), {
      allow: false,
      reason: 'public-access-disabled',
      error: clientErrors.publicAccessDisabled,
    });
  });

  it('still admits an approved private endpoint', () => {
    const s = server({ publicNetworkAccess: 'Disabled', endpoints: [['4660', 'Approved']] });
    assert.deepEqual(decideNetworkAccess(conn('10.9.9.9', { kind: 'private-link', endpointId: '4660' }), s), {
      allow: true,
      reason: 'private-endpoint',
      rule: '4660',
    });
  });
});

describe('decideNetworkAccess: private endpoints', () => {
  const s = server({
    firewall: [{ name: 'all', startIpAddress: '0.0.0.0', endIpAddress: '255.255.255.255' }],
    endpoints: [
      ['approved', 'Approved'],
      ['pending', 'Pending'],
      ['rejected', 'Rejected'],
      ['gone', 'Disconnected'],
    ],
  });
  const via = (endpointId: string): ConnectionFacts => conn('10.0.0.1', { kind: 'private-link', endpointId });

  it('admits only Approved endpoints, whatever the firewall says', () => {
    assert.deepEqual(decideNetworkAccess(via('approved'), s), { allow: true, reason: 'private-endpoint', rule: 'approved' });
    for (const id of ['pending', 'rejected', 'gone']) {
      assert.deepEqual(
        decideNetworkAccess(via(id), s),
        {
          allow: false,
          reason: 'private-endpoint-not-approved',
          error: clientErrors.privateEndpointNotApproved,
        },
        id,
      );
    }
  });

  it('reports an unknown endpoint as unknown, with the not-approved error', () => {
    assert.deepEqual(decideNetworkAccess(via('vpce-0abc'), s), {
      allow: false,
      reason: 'private-endpoint-unknown',
      error: clientErrors.privateEndpointNotApproved,
    });
  });

  it('does not let a firewall rule admit private-link traffic from an unapproved endpoint', () => {
    assert.equal(decideNetworkAccess(via('pending'), server({ firewall: [vnetWide], endpoints: [['pending', 'Pending']] })).allow, false);
  });
});

describe('decideNetworkAccess: virtual networks', () => {
  const webRule: VnetRule = { name: 'allow-web', virtualNetworkSubnetId: 'vnet1/subnets/web', ignoreMissingVnetServiceEndpoint: false };

  it('resolves subnets', () => {
    assert.deepEqual(findSubnet(vnet, '10.1.1.5'), { id: 'vnet1/subnets/web', serviceEndpoint: true });
    assert.deepEqual(findSubnet(vnet, '::ffff:10.1.2.5'), { id: 'vnet1/subnets/batch', serviceEndpoint: false });
    assert.deepEqual(findSubnet(vnet, 'fd00:1::9'), { id: 'vnet1/subnets/v6', serviceEndpoint: true });
    assert.equal(findSubnet(vnet, '10.1.3.1'), null);
    assert.equal(findSubnet(vnet, 'fd00:2::1'), null);
    assert.equal(findSubnet(vnet, 'bogus'), null);
    const nested: VirtualNetwork = {
      name: 'n',
      subnets: [
        { id: 'n/subnets/wide', name: 'wide', addressPrefix: '10.0.0.0/8', serviceEndpoint: false },
        { id: 'n/subnets/narrow', name: 'narrow', addressPrefix: '10.1.0.0/16', serviceEndpoint: true },
        { id: 'n/subnets/broken', name: 'broken', addressPrefix: '10.1.1.1/24', serviceEndpoint: true },
      ],
    };
    assert.equal(findSubnet(nested, '10.1.1.1')?.id, 'n/subnets/narrow');
    assert.equal(findSubnet(nested, '10.2.0.1')?.id, 'n/subnets/wide');
  });

  it('service-endpoint subnet with a VNet rule: allowed by the rule', () => {
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.1.5'), server({ vnetRules: [webRule] })), {
      allow: true,
      reason: 'vnet-rule',
      rule: 'allow-web',
    });
    const v6Rule: VnetRule = { name: 'v6', virtualNetworkSubnetId: 'vnet1/subnets/v6', ignoreMissingVnetServiceEndpoint: false };
    assert.deepEqual(decideNetworkAccess(fromVnet('fd00:1::9'), server({ vnetRules: [v6Rule] })), {
      allow: true,
      reason: 'vnet-rule',
      rule: 'v6',
    });
  });

  it('service-endpoint subnet without a VNet rule: refused, IP rules ignored', () => {
    const s = server({ firewall: [vnetWide], vnetRules: [{ ...webRule, virtualNetworkSubnetId: 'vnet1/subnets/other' }] });
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.1.5'), s), {
      allow: false,
      reason: 'vnet-not-allowed',
      error: clientErrors.vnetNotAllowed,
    });
  });

  it('subnet ids compare exactly', () => {
    const s = server({ vnetRules: [{ ...webRule, virtualNetworkSubnetId: 'VNET1/subnets/web' }] });
    assert.equal(decideNetworkAccess(fromVnet('10.1.1.5'), s).reason, 'vnet-not-allowed');
  });

  it('picks the first VNet rule by name when several name the subnet', () => {
    const s = server({
      vnetRules: [
        { ...webRule, name: 'zz' },
        { ...webRule, name: 'aa' },
        { ...webRule, name: 'mm' },
      ],
    });
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.1.5'), s), { allow: true, reason: 'vnet-rule', rule: 'aa' });
  });

  it('subnet without the endpoint: a plain VNet rule does not apply, IP rules do', () => {
    const batchRule: VnetRule = { name: 'batch', virtualNetworkSubnetId: 'vnet1/subnets/batch', ignoreMissingVnetServiceEndpoint: false };
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.2.5'), server({ vnetRules: [batchRule] })), {
      allow: false,
      reason: 'no-firewall-rule',
      error: noFirewallRule('10.1.2.5', 'alice', 'app', true),
    });
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.2.5'), server({ vnetRules: [batchRule], firewall: [vnetWide] })), {
      allow: true,
      reason: 'firewall-rule',
      rule: 'vnet-wide',
    });
  });

  it('subnet without the endpoint: ignoreMissingVnetServiceEndpoint admits it', () => {
    const batchRule: VnetRule = { name: 'batch', virtualNetworkSubnetId: 'vnet1/subnets/batch', ignoreMissingVnetServiceEndpoint: true };
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.2.5'), server({ vnetRules: [batchRule] })), {
      allow: true,
      reason: 'vnet-rule',
      rule: 'batch',
    });
  });

  it('address outside every subnet of the network: judged by IP rules', () => {
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.3.1'), server({ vnetRules: [webRule], firewall: [vnetWide] })), {
      allow: true,
      reason: 'firewall-rule',
      rule: 'vnet-wide',
    });
    assert.deepEqual(decideNetworkAccess(fromVnet('10.1.3.1'), server({ vnetRules: [webRule] })), {
      allow: false,
      reason: 'no-firewall-rule',
      error: noFirewallRule('10.1.3.1', 'alice', 'app', true),
    });
  });

  it('a VNet rule does not admit public traffic from the same addresses', () => {
    assert.deepEqual(decideNetworkAccess(conn('10.1.1.5'), server({ vnetRules: [{ ...webRule, ignoreMissingVnetServiceEndpoint: true }] })), {
      allow: false,
      reason: 'no-firewall-rule',
      error: noFirewallRule('10.1.1.5', 'alice', 'app', true),
    });
  });
});
