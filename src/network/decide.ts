// SPEC §3 step 5: may this connection reach this server, as far as the network goes?
// A pure function of the connection facts and the server's network snapshot.
//
// In order:
// 1. Private-link listener: the endpoint must be one of the server's private endpoint
//    connections and Approved. Nothing else is consulted (not public access, not firewall).
// 2. Public network access Disabled: everything else is refused.
// 3. Private listener, client in a subnet with the service endpoint enabled: judged ONLY by
//    the VNet rules naming that subnet; no such rule → refused, IP rules are not consulted.
// 4. Private listener, client in a subnet without the service endpoint: a VNet rule naming
//    that subnet with ignoreMissingVnetServiceEndpoint=true admits it; otherwise go on to 5.
// 5. Everything else (public listener, private listener outside any subnet or without the
//    endpoint): judged by the IP firewall rules only. No rule covers the address → refused.
// Deny by default: no rules at all admits nobody.

import { clientErrors, noFirewallRule, type ClientError } from '../pgwire/client-errors.js';
import { formatIp, parseIp, type ParsedIp } from './address.js';

export type ListenerFacts =
  | { readonly kind: 'public' }
  | {
      readonly kind: 'private';
      readonly vnet: string;
      /** The subnet of `vnet` the client address lies in (see findSubnet), or null. */
      readonly subnet: { readonly id: string; readonly serviceEndpoint: boolean } | null;
    }
  | { readonly kind: 'private-link'; readonly endpointId: string };

export interface ConnectionFacts {
  readonly clientAddress: string;
  readonly listener: ListenerFacts;
  readonly user: string;
  readonly database: string;
  readonly ssl: boolean;
}

export interface VnetRule {
  readonly name: string;
  readonly virtualNetworkSubnetId: string;
  readonly ignoreMissingVnetServiceEndpoint: boolean;
}

export type PrivateEndpointStatus = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';

export interface NetworkSnapshot {
  readonly publicNetworkAccess: 'Enabled' | 'Disabled';
  /** Anything with a FirewallIndex-style match (see buildFirewallIndex). */
  readonly firewall: { match(ip: ParsedIp | string): string | null };
  readonly vnetRules: readonly VnetRule[];
  /** Private endpoint connections by endpoint identity (LinkID or VPC endpoint id). */
  readonly privateEndpoints: ReadonlyMap<string, { readonly status: PrivateEndpointStatus }>;
}

export type NetworkAllowReason = 'firewall-rule' | 'vnet-rule' | 'private-endpoint';
export type NetworkDenyReason =
  | 'no-firewall-rule'
  | 'vnet-not-allowed'
  | 'public-access-disabled'
  | 'private-endpoint-not-approved'
  | 'private-endpoint-unknown';

export type NetworkVerdict =
  | {
      readonly allow: true;
      readonly reason: NetworkAllowReason;
      /** Firewall rule name, VNet rule name, or endpoint id that admitted the connection. */
      readonly rule?: string;
    }
  | { readonly allow: false; readonly reason: NetworkDenyReason; readonly error: ClientError };

export function decideNetworkAccess(conn: ConnectionFacts, server: NetworkSnapshot): NetworkVerdict {
  const listener = conn.listener;
  if (listener.kind === 'private-link') {
    const endpoint = server.privateEndpoints.get(listener.endpointId);
    if (endpoint === undefined) {
      return { allow: false, reason: 'private-endpoint-unknown', error: clientErrors.privateEndpointNotApproved };
    }
    if (endpoint.status !== 'Approved') {
      return { allow: false, reason: 'private-endpoint-not-approved', error: clientErrors.privateEndpointNotApproved };
    }
    return { allow: true, reason: 'private-endpoint', rule: listener.endpointId };
  }

  if (server.publicNetworkAccess !== 'Enabled') {
    return { allow: false, reason: 'public-access-disabled', error: clientErrors.publicAccessDisabled };
  }

  if (listener.kind === 'private' && listener.subnet !== null) {
    const subnet = listener.subnet;
    const rule = vnetRuleFor(server.vnetRules, subnet.id, subnet.serviceEndpoint);
    if (rule !== null) return { allow: true, reason: 'vnet-rule', rule };
    if (subnet.serviceEndpoint) {
      return { allow: false, reason: 'vnet-not-allowed', error: clientErrors.vnetNotAllowed };
    }
  }

  const ip = parseIp(conn.clientAddress);
  const rule = ip === null ? null : server.firewall.match(ip);
  if (rule !== null) return { allow: true, reason: 'firewall-rule', rule };
  const shown = ip === null ? conn.clientAddress : formatIp(ip);
  return { allow: false, reason: 'no-firewall-rule', error: noFirewallRule(shown, conn.user, conn.database, conn.ssl) };
}

/** The first VNet rule (by name) naming the subnet that admits it; subnet ids compare exactly. */
function vnetRuleFor(rules: readonly VnetRule[], subnetId: string, serviceEndpoint: boolean): string | null {
  let best: string | null = null;
  for (const r of rules) {
    if (r.virtualNetworkSubnetId !== subnetId) continue;
    if (!serviceEndpoint && !r.ignoreMissingVnetServiceEndpoint) continue;
    if (best === null || r.name < best) best = r.name;
  }
  return best;
}
