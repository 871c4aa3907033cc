// Which subnet of a virtual network a client address comes from (for private listeners).

import { cidrContains, parseCidr, parseIp, type ParsedIp } from './address.js';

export interface Subnet {
  /** e.g. "vnet1/subnets/web": what VNet rules name in virtualNetworkSubnetId. */
  readonly id: string;
  readonly name: string;
  readonly addressPrefix: string;
  readonly serviceEndpoint: boolean;
}

export interface VirtualNetwork {
  readonly name: string;
  readonly subnets: readonly Subnet[];
}

export interface SubnetMatch {
  readonly id: string;
  readonly serviceEndpoint: boolean;
}

/**
 * The subnet whose addressPrefix contains ip, or null (address outside every subnet, or not an
 * address). Subnets of one network should not overlap; if they do, the longest prefix wins, then
 * the first listed. Prefixes that do not parse are skipped (the API validates them).
 */
export function findSubnet(vnet: VirtualNetwork, ip: ParsedIp | string): SubnetMatch | null {
  const address = typeof ip === 'string' ? parseIp(ip) : ip;
  if (address === null) return null;
  let best: Subnet | null = null;
  let bestLength = -1;
  for (const subnet of vnet.subnets) {
    const cidr = parseCidr(subnet.addressPrefix);
    if (typeof cidr === 'string') continue;
    if (cidr.prefixLength > bestLength && cidrContains(cidr, address)) {
      best = subnet;
      bestLength = cidr.prefixLength;
    }
  }
  return best === null ? null : { id: best.id, serviceEndpoint: best.serviceEndpoint };
}
