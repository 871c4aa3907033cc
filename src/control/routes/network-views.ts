// The JSON shape of network resources, as the API returns them.
import type { FirewallRuleRecord } from '../../catalog/firewall-rules-repo.js';
import type { VnetRuleRecord } from '../../catalog/vnet-rules-repo.js';
import type { PrivateEndpointRecord } from '../../catalog/private-endpoints-repo.js';
import type { SubnetRecord } from '../../catalog/vnets-repo.js';
import type { VnetWithSubnets } from '../../services/virtual-network-service.js';
import { vnetRuleStatus } from '../../services/network-service.js';

const times = (r: { createdAt: Date; updatedAt: Date }) => ({ createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() });

export function firewallRuleView(server: string, r: FirewallRuleRecord) {
  return {
    id: `/servers/${server}/firewallRules/${r.name}`,
    name: r.name,
    startIpAddress: r.startIpAddress,
    endIpAddress: r.endIpAddress,
    ...times(r),
  };
}

export function vnetRuleView(server: string, r: VnetRuleRecord) {
  const status = vnetRuleStatus(r);
  return {
    id: `/servers/${server}/virtualNetworkRules/${r.name}`,
    name: r.name,
    virtualNetworkSubnetId: r.virtualNetworkSubnetId,
    ignoreMissingVnetServiceEndpoint: r.ignoreMissingVnetServiceEndpoint,
    state: status.state,
    ...(status.reason ? { stateReason: status.reason } : {}),
    ...times(r),
  };
}

export function privateEndpointView(server: string, r: PrivateEndpointRecord) {
  return {
    id: `/servers/${server}/privateEndpointConnections/${r.endpointId}`,
    name: r.endpointId,
    privateEndpoint: { id: r.endpointId, kind: r.kind },
    status: r.status,
    description: r.description,
    ...times(r),
  };
}

export function subnetView(s: SubnetRecord) {
  return {
    id: `${s.vnetName}/subnets/${s.name}`,
    name: s.name,
    addressPrefix: s.addressPrefix,
    serviceEndpoint: s.serviceEndpoint,
    ...times(s),
  };
}

export function vnetView(v: VnetWithSubnets) {
  return {
    id: `/virtualNetworks/${v.name}`,
    name: v.name,
    addressPrefixes: v.addressPrefixes,
    listenAddress: v.listenAddress,
    listenerState: v.listener.state,
    ...(v.listener.state !== 'Ready' && v.listener.problem ? { listenerProblem: v.listener.problem } : {}),
    subnets: v.subnets.map(subnetView),
    ...times(v),
  };
}
