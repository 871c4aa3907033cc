// A server's network perimeter: IP firewall rules, VNet rules, private endpoint connections,
// and the access check. Nothing here knows about HTTP; the gateway decides from the same rows
// through src/network/state.ts.
import type pg from 'pg';
import { formatIp, parseIp, validateIpRange, validateRuleName } from '../network/address.js';
import { AccessQueryError, checkAccess, loadNetworkState, type AccessAnswer, type NetworkState } from '../network/state.js';
import { findServer, inTransaction, type ServerRef } from '../catalog/network-repo.js';
import { ServersRepo } from '../catalog/servers-repo.js';
import { FirewallRulesRepo, type FirewallRuleRecord } from '../catalog/firewall-rules-repo.js';
import { VnetRulesRepo, type VnetRuleRecord } from '../catalog/vnet-rules-repo.js';
import { VnetsRepo } from '../catalog/vnets-repo.js';
import {
  endpointKindOf,
  PrivateEndpointsRepo,
  type PrivateEndpointKind,
  type PrivateEndpointRecord,
  type PrivateEndpointStatus,
} from '../catalog/private-endpoints-repo.js';
import { VirtualNetworkService } from './virtual-network-service.js';
import { conflict, invalid, notFound } from './errors.js';

export interface FirewallRuleInput {
  readonly startIpAddress: string;
  readonly endIpAddress: string;
}

export interface VnetRuleInput {
  readonly virtualNetworkSubnetId: string;
  readonly ignoreMissingVnetServiceEndpoint?: boolean;
}

export interface PrivateEndpointInput {
  readonly privateEndpoint?: { readonly kind?: PrivateEndpointKind };
  readonly status?: PrivateEndpointStatus;
  readonly description?: string;
}

export interface AccessCheckInput {
  readonly ip: string;
  readonly listener?: string;
  readonly endpoint?: string;
  /** Default: the server's administrator login. */
  readonly user?: string;
  /** Default: the user name, as libpq does. */
  readonly database?: string;
  /** Default: true. */
  readonly ssl?: boolean;
}

export type VnetRuleState = 'Initializing' | 'InProgress' | 'Ready' | 'Deleting' | 'Unknown';

/** Ready when the subnet exists and has the service endpoint (or the rule ignores its absence)
 * and the gateway serves its network's listen address; Initializing while the subnet lacks the
 * endpoint; InProgress while the gateway sets the listener up; Unknown when the subnet is gone
 * or the gateway cannot serve the network (stateReason says why). */
export function vnetRuleState(rule: VnetRuleRecord): VnetRuleState {
  return vnetRuleStatus(rule).state;
}

export function vnetRuleStatus(rule: VnetRuleRecord): { state: VnetRuleState; reason?: string } {
  if (rule.subnet === null) return { state: 'Unknown', reason: `Subnet '${rule.virtualNetworkSubnetId}' does not exist.` };
  if (!rule.subnet.serviceEndpoint && !rule.ignoreMissingVnetServiceEndpoint) {
    return { state: 'Initializing', reason: `Subnet '${rule.virtualNetworkSubnetId}' does not have the service endpoint enabled.` };
  }
  const listener = rule.listener;
  if (listener === undefined || listener.state === 'Ready' || listener.state === 'Unknown') return { state: 'Ready' };
  return { state: listener.state === 'Pending' ? 'InProgress' : 'Unknown', reason: listener.problem };
}

const SUBNET_ID = /^([^/]+)\/subnets\/([^/]+)$/;

export class NetworkService {
  readonly virtualNetworks: VirtualNetworkService;
  private readonly firewall: FirewallRulesRepo;
  private readonly vnetRules: VnetRulesRepo;
  private readonly endpoints: PrivateEndpointsRepo;

  constructor(
    private readonly db: pg.Pool,
    /** Where the access check reads the rules from: by default the catalog, fresh each time. */
    private readonly state: () => Promise<NetworkState> = () => loadNetworkState(db),
  ) {
    this.virtualNetworks = new VirtualNetworkService(db);
    this.firewall = new FirewallRulesRepo(db);
    this.vnetRules = new VnetRulesRepo(db);
    this.endpoints = new PrivateEndpointsRepo(db);
  }

  private async server(name: string): Promise<ServerRef> {
    const s = await findServer(this.db, name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s;
  }

  /** Runs a rule change with the server row locked, refused while public access is Disabled. */
  private changeRules<T>(serverName: string, fn: (client: pg.PoolClient, server: ServerRef) => Promise<T>): Promise<T> {
    return inTransaction(this.db, async (client) => {
      const s = await findServer(client, serverName, true);
      if (!s) throw notFound(`Server '${serverName}' was not found.`);
      if (s.publicNetworkAccess === 'Disabled') {
        throw conflict(
          `Public network access is disabled for server '${serverName}': firewall and virtual network rules cannot be changed. Enable public network access first.`,
        );
      }
      return fn(client, s);
    });
  }

  // ---- IP firewall rules ----

  async listFirewallRules(server: string): Promise<FirewallRuleRecord[]> {
    return this.firewall.list((await this.server(server)).id);
  }

  async getFirewallRule(server: string, rule: string): Promise<FirewallRuleRecord> {
    const found = await this.firewall.get((await this.server(server)).id, rule);
    if (!found) throw notFound(`Firewall rule '${rule}' of server '${server}' was not found.`);
    return found;
  }

  async createFirewallRule(server: string, rule: string, input: FirewallRuleInput): Promise<FirewallRuleRecord> {
    const range = firewallRange(rule, input);
    return this.changeRules(server, async (client, s) => {
      const created = await new FirewallRulesRepo(client).insert(s.id, rule, range.start, range.end);
      if (!created) throw conflict(`A firewall rule named '${rule}' already exists on server '${server}'.`);
      return created;
    });
  }

  async putFirewallRule(server: string, rule: string, input: FirewallRuleInput): Promise<{ rule: FirewallRuleRecord; created: boolean }> {
    const range = firewallRange(rule, input);
    return this.changeRules(server, async (client, s) => {
      const { record, created } = await new FirewallRulesRepo(client).upsert(s.id, rule, range.start, range.end);
      return { rule: record, created };
    });
  }

  async patchFirewallRule(server: string, rule: string, patch: Partial<FirewallRuleInput>): Promise<FirewallRuleRecord> {
    return this.changeRules(server, async (client, s) => {
      const repo = new FirewallRulesRepo(client);
      const current = await repo.get(s.id, rule);
      if (!current) throw notFound(`Firewall rule '${rule}' of server '${server}' was not found.`);
      const range = firewallRange(rule, {
        startIpAddress: patch.startIpAddress ?? current.startIpAddress,
        endIpAddress: patch.endIpAddress ?? current.endIpAddress,
      });
      return (await repo.upsert(s.id, rule, range.start, range.end)).record;
    });
  }

  /** Allowed while public access is Disabled: removing access never widens it. */
  async deleteFirewallRule(server: string, rule: string): Promise<void> {
    if (!(await this.firewall.delete((await this.server(server)).id, rule))) {
      throw notFound(`Firewall rule '${rule}' of server '${server}' was not found.`);
    }
  }

  // ---- VNet rules ----

  /** The rule with whether the gateway serves its network (see vnetRuleStatus). */
  private withListener(r: VnetRuleRecord): VnetRuleRecord {
    return r.vnet ? { ...r, listener: this.virtualNetworks.listenerOf(r.vnet.name, r.vnet.listenAddress) } : r;
  }

  async listVnetRules(server: string): Promise<VnetRuleRecord[]> {
    return (await this.vnetRules.list((await this.server(server)).id)).map((r) => this.withListener(r));
  }

  async getVnetRule(server: string, rule: string): Promise<VnetRuleRecord> {
    const found = await this.vnetRules.get((await this.server(server)).id, rule);
    if (!found) throw notFound(`Virtual network rule '${rule}' of server '${server}' was not found.`);
    return this.withListener(found);
  }

  /** `replace` false: 409 when the name exists (POST); true: create or replace (PUT). */
  async writeVnetRule(server: string, rule: string, input: VnetRuleInput, replace: boolean): Promise<{ rule: VnetRuleRecord; created: boolean }> {
    const nameProblem = validateRuleName(rule);
    if (nameProblem) throw invalid(`Invalid virtual network rule name: ${nameProblem}.`);
    const subnetId = input.virtualNetworkSubnetId;
    const ignore = input.ignoreMissingVnetServiceEndpoint ?? false;
    const m = SUBNET_ID.exec(subnetId);
    if (!m) throw invalid(`virtualNetworkSubnetId '${subnetId}' must have the form {virtualNetwork}/subnets/{subnet}.`);
    return this.changeRules(server, async (client, s) => {
      const subnet = await new VnetsRepo(client).subnet(m[1]!, m[2]!);
      if (!subnet) throw invalid(`Subnet '${subnetId}' does not exist: create it first (pgwarden network vnet subnet create).`);
      if (!subnet.serviceEndpoint && !ignore) {
        throw invalid(
          `Subnet '${subnetId}' does not have the service endpoint enabled. Enable it on the subnet, or set ignoreMissingVnetServiceEndpoint (--ignore-missing-endpoint) to create the rule anyway.`,
        );
      }
      const repo = new VnetRulesRepo(client);
      const { written, created } = await repo.write(s.id, rule, subnetId, ignore, replace);
      if (!written) throw conflict(`A virtual network rule named '${rule}' already exists on server '${server}'.`);
      return { rule: this.withListener((await repo.get(s.id, rule))!), created };
    });
  }

  async deleteVnetRule(server: string, rule: string): Promise<void> {
    if (!(await this.vnetRules.delete((await this.server(server)).id, rule))) {
      throw notFound(`Virtual network rule '${rule}' of server '${server}' was not found.`);
    }
  }

  // ---- Private endpoint connections ----

  async listPrivateEndpoints(server: string): Promise<PrivateEndpointRecord[]> {
    return this.endpoints.list((await this.server(server)).id);
  }

  async getPrivateEndpoint(server: string, id: string): Promise<PrivateEndpointRecord> {
    const found = await this.endpoints.get((await this.server(server)).id, id);
    if (!found) throw notFound(`Private endpoint connection '${id}' of server '${server}' was not found.`);
    return found;
  }

  /** Registers an endpoint ahead of its first connection (Pending unless a status is given). */
  async putPrivateEndpoint(server: string, id: string, input: PrivateEndpointInput): Promise<{ connection: PrivateEndpointRecord; created: boolean }> {
    const kind = endpointKindOf(id);
    if (kind === null) {
      throw invalid(
        `Invalid private endpoint id '${id}': it must be an Azure Private Link LinkID (a decimal number from 0 to 4294967295) or an AWS VPC endpoint id (vpce-…).`,
      );
    }
    const given = input.privateEndpoint?.kind;
    if (given !== undefined && given !== kind) throw invalid(`Private endpoint id '${id}' is of kind ${kind}, not ${given}.`);
    const s = await this.server(server);
    const { record, created } = await this.endpoints.upsert(s.id, id, kind, input.status ?? 'Pending', input.description ?? '');
    return { connection: record, created };
  }

  async setPrivateEndpointStatus(server: string, id: string, status: 'Approved' | 'Rejected', description?: string): Promise<PrivateEndpointRecord> {
    const updated = await this.endpoints.setStatus((await this.server(server)).id, id, status, description);
    if (!updated) throw notFound(`Private endpoint connection '${id}' of server '${server}' was not found.`);
    return updated;
  }

  async deletePrivateEndpoint(server: string, id: string): Promise<void> {
    if (!(await this.endpoints.delete((await this.server(server)).id, id))) {
      throw notFound(`Private endpoint connection '${id}' of server '${server}' was not found.`);
    }
  }

  // ---- Access check ----

  async checkAccess(server: string, input: AccessCheckInput): Promise<AccessAnswer & { user: string; database: string; ssl: boolean }> {
    const record = await new ServersRepo(this.db).get(server);
    if (!record) throw notFound(`Server '${server}' was not found.`);
    const user = input.user ?? record.administratorLogin;
    const query = { ...input, user, database: input.database ?? user, ssl: input.ssl ?? true };
    try {
      return { ...checkAccess(await this.state(), server, query), user: query.user, database: query.database, ssl: query.ssl };
    } catch (err) {
      if (err instanceof AccessQueryError) throw err.kind === 'not-found' ? notFound(err.message) : invalid(err.message);
      throw err;
    }
  }
}

/** Validated range in canonical text (IPv4-mapped IPv6 stored as IPv4), or a 400. */
function firewallRange(rule: string, input: FirewallRuleInput): { start: string; end: string } {
  const nameProblem = validateRuleName(rule);
  if (nameProblem) throw invalid(`Invalid firewall rule name: ${nameProblem}.`);
  const problem = validateIpRange(input.startIpAddress, input.endIpAddress);
  if (problem) throw invalid(`Invalid firewall rule '${rule}': ${problem}.`);
  return { start: formatIp(parseIp(input.startIpAddress)!), end: formatIp(parseIp(input.endIpAddress)!) };
}
