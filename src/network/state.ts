// The catalog's network rows turned into the decision core's inputs (NetworkSnapshot per server,
// virtual networks for findSubnet), and the access check that explains one decision. The
// gateway and the control plane's access check both decide from a NetworkState, so they agree.
import type pg from 'pg';
import type { ClientError } from '../pgwire/client-errors.js';
import { formatIp, parseIp, validateIpRange } from './address.js';
import {
  decideNetworkAccess,
  type ConnectionFacts,
  type ListenerFacts,
  type NetworkAllowReason,
  type NetworkDenyReason,
  type NetworkSnapshot,
  type PrivateEndpointStatus,
  type VnetRule,
} from './decide.js';
import { buildFirewallIndex, type FirewallRule } from './firewall-index.js';
import { findSubnet, type Subnet, type VirtualNetwork } from './vnet.js';

export interface VnetState extends VirtualNetwork {
  readonly addressPrefixes: readonly string[];
  /** The address the gateway's listener for this network binds, or null (no listener). */
  readonly listenAddress: string | null;
  readonly subnets: readonly Subnet[];
}

/** What the gateway decides network access from (gateway/network-stage.ts): each server's rules
 * and the virtual networks with their listeners. The catalog snapshot holds one. */
export interface NetworkView {
  readonly servers: ReadonlyMap<string, NetworkSnapshot>;
  readonly vnets: ReadonlyMap<string, VirtualNetwork & { readonly listenAddress: string | null }>;
}

export interface NetworkState {
  readonly servers: ReadonlyMap<string, NetworkSnapshot>;
  readonly vnets: ReadonlyMap<string, VnetState>;
  /** Catalog rows that could not be used (e.g. an invalid range written by hand): skipped. */
  readonly problems: readonly string[];
}

export const listenerNames = { public: 'public', privateLink: 'private-link' } as const;

type Toggle = 'Enabled' | 'Disabled';

interface StateRow {
  servers: [string, Toggle][];
  firewall: [string, string, string, string][];
  vnet_rules: [string, string, string, boolean][];
  endpoints: [string, string, PrivateEndpointStatus][];
  vnets: [string, string[], string | null][];
  subnets: [string, string, string, boolean][];
}

// One statement, so one consistent snapshot and one round trip, on a pool or a client.
const STATE_SQL = `select
  (select coalesce(json_agg(json_build_array(name, public_network_access)), '[]') from servers) as servers,
  (select coalesce(json_agg(json_build_array(s.name, f.name, f.start_ip_address, f.end_ip_address)), '[]')
     from firewall_rules f join servers s on s.id = f.server_id) as firewall,
  (select coalesce(json_agg(json_build_array(s.name, r.name, r.virtual_network_subnet_id, r.ignore_missing_vnet_service_endpoint)), '[]')
     from virtual_network_rules r join servers s on s.id = r.server_id) as vnet_rules,
  (select coalesce(json_agg(json_build_array(s.name, p.endpoint_id, p.status)), '[]')
     from private_endpoint_connections p join servers s on s.id = p.server_id) as endpoints,
  (select coalesce(json_agg(json_build_array(name, address_prefixes, listen_address) order by name), '[]') from virtual_networks) as vnets,
  (select coalesce(json_agg(json_build_array(vnet_name, name, address_prefix, service_endpoint) order by vnet_name, name), '[]') from subnets) as subnets`;

export async function loadNetworkState(db: pg.Pool | pg.ClientBase): Promise<NetworkState> {
  const { rows } = await db.query<StateRow>(STATE_SQL);
  return buildNetworkState(rows[0]!);
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function buildNetworkState(row: StateRow): NetworkState {
  const problems: string[] = [];
  const firewall = groupBy(row.firewall, (r) => r[0]);
  const vnetRules = groupBy(row.vnet_rules, (r) => r[0]);
  const endpoints = groupBy(row.endpoints, (r) => r[0]);
  const servers = new Map<string, NetworkSnapshot>();
  for (const [name, publicNetworkAccess] of row.servers) {
    const rules: FirewallRule[] = [];
    for (const [, rule, start, end] of firewall.get(name) ?? []) {
      const problem = validateIpRange(start, end);
      if (problem === null) rules.push({ name: rule, startIpAddress: start, endIpAddress: end });
      else problems.push(`server '${name}' firewall rule '${rule}' skipped: ${problem}`);
    }
    servers.set(name, {
      publicNetworkAccess,
      firewall: buildFirewallIndex(rules),
      vnetRules: (vnetRules.get(name) ?? []).map(
        ([, rule, subnetId, ignore]): VnetRule => ({
          name: rule,
          virtualNetworkSubnetId: subnetId,
          ignoreMissingVnetServiceEndpoint: ignore,
        }),
      ),
      privateEndpoints: new Map((endpoints.get(name) ?? []).map(([, id, status]) => [id, { status }])),
    });
  }
  const subnets = groupBy(row.subnets, (r) => r[0]);
  const vnets = new Map<string, VnetState>();
  for (const [name, addressPrefixes, listenAddress] of row.vnets) {
    vnets.set(name, {
      name,
      addressPrefixes,
      listenAddress,
      subnets: (subnets.get(name) ?? []).map(([vnet, subnet, addressPrefix, serviceEndpoint]) => ({
        id: `${vnet}/subnets/${subnet}`,
        name: subnet,
        addressPrefix,
        serviceEndpoint,
      })),
    });
  }
  return { servers, vnets, problems };
}

// ---- The access check: one decision, explained. ----

export interface AccessQuery {
  readonly ip: string;
  /** 'public' (default), 'private-link', or the name of a virtual network. */
  readonly listener?: string;
  /** Private-link listener: the endpoint identity (LinkID or VPC endpoint id). */
  readonly endpoint?: string;
  readonly user: string;
  readonly database: string;
  readonly ssl: boolean;
}

export interface AccessAnswer {
  readonly allow: boolean;
  readonly reason: NetworkAllowReason | NetworkDenyReason;
  /** The firewall rule, VNet rule or endpoint id that admitted the connection. */
  readonly rule?: string;
  /** Virtual network listeners: the subnet the address lies in. */
  readonly subnet?: string;
  /** In words: what admitted the connection, or which rule is missing. */
  readonly explanation: string;
  /** Exactly what a client would be sent. */
  readonly error?: ClientError;
}

export class AccessQueryError extends Error {
  constructor(
    readonly kind: 'not-found' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'AccessQueryError';
  }
}

/** The listener facts for a connection from `ip` on the named listener. */
export function listenerFactsFor(state: NetworkState, query: Pick<AccessQuery, 'ip' | 'listener' | 'endpoint'>): ListenerFacts {
  const listener = query.listener ?? listenerNames.public;
  if (listener === listenerNames.public) return { kind: 'public' };
  if (listener === listenerNames.privateLink) {
    if (!query.endpoint) throw new AccessQueryError('invalid', 'The private-link listener needs an endpoint id (LinkID or VPC endpoint id).');
    return { kind: 'private-link', endpointId: query.endpoint };
  }
  const vnet = state.vnets.get(listener);
  if (vnet === undefined) {
    throw new AccessQueryError('invalid', `Unknown listener '${listener}': use public, private-link or the name of a virtual network.`);
  }
  return { kind: 'private', vnet: vnet.name, subnet: findSubnet(vnet, query.ip) };
}

export function checkAccess(state: NetworkState, serverName: string, query: AccessQuery): AccessAnswer {
  const server = state.servers.get(serverName);
  if (server === undefined) throw new AccessQueryError('not-found', `Server '${serverName}' was not found.`);
  const ip = parseIp(query.ip);
  if (ip === null) throw new AccessQueryError('invalid', `ip "${query.ip}" is not a valid IPv4 or IPv6 address.`);
  const address = formatIp(ip);
  const listener = listenerFactsFor(state, { ...query, ip: address });
  const facts: ConnectionFacts = { clientAddress: address, listener, user: query.user, database: query.database, ssl: query.ssl };
  const verdict = decideNetworkAccess(facts, server);
  const subnet = listener.kind === 'private' && listener.subnet ? listener.subnet : null;
  const base = subnet ? { subnet: subnet.id } : {};
  const explanation = explain(serverName, address, listener, verdict.reason, verdict.allow ? verdict.rule : undefined);
  if (verdict.allow) return { allow: true, reason: verdict.reason, rule: verdict.rule, ...base, explanation };
  return { allow: false, reason: verdict.reason, ...base, explanation, error: verdict.error };
}

function explain(server: string, address: string, listener: ListenerFacts, reason: NetworkAllowReason | NetworkDenyReason, rule: string | undefined): string {
  const endpoint = listener.kind === 'private-link' ? listener.endpointId : '';
  switch (reason) {
    case 'firewall-rule':
      return `Firewall rule '${rule}' of server '${server}' covers ${address}.`;
    case 'vnet-rule':
      return `Virtual network rule '${rule}' of server '${server}' admits subnet '${listener.kind === 'private' ? listener.subnet?.id : ''}'.`;
    case 'private-endpoint':
      return `Private endpoint connection '${endpoint}' of server '${server}' is Approved.`;
    case 'private-endpoint-unknown':
      return `Endpoint '${endpoint}' is not a private endpoint connection of server '${server}'; its first connection registers it as Pending, then it must be approved.`;
    case 'private-endpoint-not-approved':
      return `Private endpoint connection '${endpoint}' of server '${server}' is not Approved: approve it to let it connect.`;
    case 'public-access-disabled':
      return `Public network access of server '${server}' is Disabled: only approved private endpoints connect.`;
    case 'vnet-not-allowed':
      return `Subnet '${listener.kind === 'private' ? listener.subnet?.id : ''}' has the service endpoint enabled, so only virtual network rules apply, and no virtual network rule of server '${server}' names it.`;
    case 'no-firewall-rule': {
      const where =
        listener.kind === 'private'
          ? listener.subnet === null
            ? ` (${address} lies in no subnet of virtual network '${listener.vnet}', so IP firewall rules apply)`
            : ` (subnet '${listener.subnet.id}' has no service endpoint and no virtual network rule ignoring that, so IP firewall rules apply)`
          : '';
      return `No firewall rule of server '${server}' covers ${address}${where}: a rule with a range including ${address} is missing.`;
    }
  }
}
