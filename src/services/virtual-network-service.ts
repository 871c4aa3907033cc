// Virtual networks and subnets (platform level): validation and the catalog kept consistent.
// A subnet lies inside one of its network's prefixes; subnets of one network do not overlap;
// a listen address belongs to at most one network.
import type pg from 'pg';
import { cidrContains, formatIp, parseCidr, parseIp, type Cidr } from '../network/address.js';
import { listenerNames } from '../network/state.js';
import { inTransaction, isUniqueViolation } from '../catalog/network-repo.js';
import { VnetsRepo, type SubnetRecord, type VnetRecord } from '../catalog/vnets-repo.js';
import { conflict, invalid, notFound } from './errors.js';
import type { VnetListenerView } from '../gateway/vnet-listeners.js';

export const MAX_ADDRESS_PREFIXES = 32;

export interface VnetInput {
  readonly addressPrefixes: readonly string[];
  readonly listenAddress?: string | null;
}

export interface SubnetInput {
  readonly addressPrefix: string;
  readonly serviceEndpoint?: boolean;
}

export interface VnetWithSubnets extends VnetRecord {
  readonly subnets: readonly SubnetRecord[];
  /** Whether the gateway serves the network's listen address (see listenerReport). */
  readonly listener: ListenerReport;
}

/** Ready: a gateway socket receives the listen address; Pending: being set up; Failed: it
 * cannot be served (problem says why); None: no listen address; Unknown: no gateway in this
 * process to ask. */
export type ListenerState = 'Ready' | 'Pending' | 'Failed' | 'None' | 'Unknown';

export interface ListenerReport {
  readonly state: ListenerState;
  readonly problem?: string;
}

/** How long a change of listen address waits for the gateway to apply it before answering. */
const SETTLE_MS = 5_000;

/** The state of a network's listener as the gateway has it. */
export function listenerReport(vnet: string, listenAddress: string | null, view: VnetListenerView | null): ListenerReport {
  if (listenAddress === null) {
    return { state: 'None', problem: `Virtual network '${vnet}' has no listen address: no gateway listener receives its traffic.` };
  }
  if (view === null) return { state: 'Unknown', problem: 'No gateway runs in this process to report on the listener.' };
  const s = view.status(vnet);
  if (s === null || s.address !== listenAddress || s.state === 'Pending') {
    return { state: 'Pending', problem: `The gateway is setting up the listener of virtual network '${vnet}' on ${listenAddress}.` };
  }
  if (s.state === 'Failed') return { state: 'Failed', problem: `The gateway cannot serve virtual network '${vnet}' on ${listenAddress}: ${s.reason}.` };
  return { state: 'Ready' };
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

export function vnetNameProblem(name: string, what: 'virtual network' | 'subnet', max: number): string | null {
  if (name.length === 0 || name.length > max || !NAME.test(name)) {
    return `Invalid ${what} name '${name}': it must be 1 to ${max} letters, digits, '-', '_' or '.', start with a letter or digit and end with a letter, digit or '_'.`;
  }
  if (what === 'virtual network' && (Object.values(listenerNames) as string[]).includes(name.toLowerCase())) {
    return `Invalid virtual network name '${name}': '${name.toLowerCase()}' names a gateway listener kind.`;
  }
  return null;
}

/** Parsed CIDR and its canonical text, or a 400. */
function cidr(text: string, field: string): { block: Cidr; text: string } {
  const block = parseCidr(text);
  if (typeof block === 'string') throw invalid(`${field}: ${block}.`);
  return { block, text: `${formatIp(block.first)}/${block.prefixLength}` };
}

const overlaps = (a: Cidr, b: Cidr) => cidrContains(a, b.first) || cidrContains(b, a.first);
const inside = (outer: Cidr, inner: Cidr) => cidrContains(outer, inner.first) && cidrContains(outer, inner.last);

function canonicalPrefixes(prefixes: readonly string[]): { blocks: Cidr[]; texts: string[] } {
  if (prefixes.length === 0) throw invalid('addressPrefixes: a virtual network needs at least one address prefix.');
  if (prefixes.length > MAX_ADDRESS_PREFIXES) throw invalid(`addressPrefixes: at most ${MAX_ADDRESS_PREFIXES} are allowed.`);
  const parsed = prefixes.map((p) => cidr(p, 'addressPrefixes'));
  for (let i = 0; i < parsed.length; i++) {
    for (let j = 0; j < i; j++) {
      if (overlaps(parsed[i]!.block, parsed[j]!.block)) {
        throw invalid(`addressPrefixes: ${parsed[i]!.text} overlaps ${parsed[j]!.text}.`);
      }
    }
  }
  return { blocks: parsed.map((p) => p.block), texts: parsed.map((p) => p.text) };
}

function canonicalListenAddress(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const ip = parseIp(text);
  if (ip === null) throw invalid(`listenAddress "${text}" is not a valid IPv4 or IPv6 address.`);
  if ((ip.family === 4 && ip.value === 0) || (ip.family === 6 && ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0 && ip.w3 === 0)) {
    throw invalid(`listenAddress "${text}" is the unspecified address: give the one address the network's listener binds.`);
  }
  return formatIp(ip);
}

export class VirtualNetworkService {
  private readonly repo: VnetsRepo;
  private listeners: VnetListenerView | null = null;

  constructor(private readonly db: pg.Pool) {
    this.repo = new VnetsRepo(db);
  }

  /** The gateway of this process: listen addresses are checked against it before they are
   * written, and networks and VNet rules report whether it serves them. */
  useListeners(view: VnetListenerView): void {
    this.listeners = view;
  }

  /** The listener state of a network, as the gateway of this process has it. */
  listenerOf(vnet: string, listenAddress: string | null): ListenerReport {
    return listenerReport(vnet, listenAddress, this.listeners);
  }

  private withListener(v: VnetRecord, subnets: readonly SubnetRecord[]): VnetWithSubnets {
    return { ...v, subnets, listener: this.listenerOf(v.name, v.listenAddress) };
  }

  async list(): Promise<VnetWithSubnets[]> {
    const vnets = await this.repo.list();
    return Promise.all(vnets.map(async (v) => this.withListener(v, await this.repo.subnets(v.name))));
  }

  async get(name: string): Promise<VnetWithSubnets> {
    const vnet = await this.repo.get(name);
    if (!vnet) throw notFound(`Virtual network '${name}' was not found.`);
    return this.withListener(vnet, await this.repo.subnets(name));
  }

  /** Creates or replaces a network; its subnets must still fit the new prefixes. */
  async put(name: string, input: VnetInput): Promise<{ vnet: VnetWithSubnets; created: boolean }> {
    const problem = vnetNameProblem(name, 'virtual network', 64);
    if (problem) throw invalid(problem);
    const prefixes = canonicalPrefixes(input.addressPrefixes);
    const listenAddress = canonicalListenAddress(input.listenAddress);
    // A network the gateway cannot serve is never written as if it were in force.
    if (listenAddress !== null && this.listeners) {
      const problem = await this.listeners.check(name, listenAddress);
      if (problem) throw conflict(`The gateway cannot listen on ${listenAddress} for virtual network '${name}': ${problem}.`);
    }
    let result: { vnet: VnetWithSubnets; created: boolean };
    try {
      result = await inTransaction(this.db, async (client) => {
        const repo = new VnetsRepo(client);
        await repo.get(name, true);
        for (const s of await repo.subnets(name)) {
          const block = cidr(s.addressPrefix, 'addressPrefix').block;
          if (!prefixes.blocks.some((p) => inside(p, block))) {
            throw conflict(
              `Subnet '${s.name}' (${s.addressPrefix}) would lie outside the address prefixes of virtual network '${name}': change or delete it first.`,
            );
          }
        }
        await this.assertListenAddressFree(repo, listenAddress, name);
        const { record, created } = await repo.upsert(name, { addressPrefixes: prefixes.texts, listenAddress });
        return { vnet: this.withListener(record, await repo.subnets(name)), created };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`listenAddress ${listenAddress} is already used by another virtual network.`);
      throw err;
    }
    // The answer says what the gateway made of it (it follows the catalog within a second).
    if (listenAddress !== null && this.listeners) {
      await this.listeners.settled(name, listenAddress, SETTLE_MS);
      result = { ...result, vnet: { ...result.vnet, listener: this.listenerOf(name, listenAddress) } };
    }
    return result;
  }

  /** Changes the prefixes and/or the listen address (null removes the listener). */
  async patch(name: string, patch: Partial<VnetInput>): Promise<VnetWithSubnets> {
    const current = await this.get(name);
    const { vnet } = await this.put(name, {
      addressPrefixes: patch.addressPrefixes ?? current.addressPrefixes,
      listenAddress: patch.listenAddress === undefined ? current.listenAddress : patch.listenAddress,
    });
    return vnet;
  }

  async delete(name: string): Promise<void> {
    if (!(await this.repo.delete(name))) throw notFound(`Virtual network '${name}' was not found.`);
  }

  private async assertListenAddressFree(repo: VnetsRepo, address: string | null, self: string): Promise<void> {
    if (address === null) return;
    const owner = await repo.byListenAddress(address);
    if (owner !== null && owner !== self) {
      throw conflict(`listenAddress ${address} is already used by virtual network '${owner}'.`);
    }
  }

  // ---- Subnets ----

  async listSubnets(vnet: string): Promise<SubnetRecord[]> {
    await this.get(vnet);
    return this.repo.subnets(vnet);
  }

  async getSubnet(vnet: string, name: string): Promise<SubnetRecord> {
    const subnet = await this.repo.subnet(vnet, name);
    if (subnet) return subnet;
    await this.get(vnet);
    throw notFound(`Subnet '${name}' of virtual network '${vnet}' was not found.`);
  }

  async putSubnet(vnet: string, name: string, input: SubnetInput): Promise<{ subnet: SubnetRecord; created: boolean }> {
    const problem = vnetNameProblem(name, 'subnet', 80);
    if (problem) throw invalid(problem);
    const prefix = cidr(input.addressPrefix, 'addressPrefix');
    return inTransaction(this.db, async (client) => {
      const repo = new VnetsRepo(client);
      const network = await repo.get(vnet, true);
      if (!network) throw notFound(`Virtual network '${vnet}' was not found.`);
      const blocks = network.addressPrefixes.map((p) => cidr(p, 'addressPrefixes').block);
      if (!blocks.some((b) => inside(b, prefix.block))) {
        throw invalid(`addressPrefix ${prefix.text} is not inside the address space of virtual network '${vnet}' (${network.addressPrefixes.join(', ')}).`);
      }
      for (const other of await repo.subnets(vnet)) {
        if (other.name === name) continue;
        if (overlaps(cidr(other.addressPrefix, 'addressPrefix').block, prefix.block)) {
          throw conflict(`addressPrefix ${prefix.text} overlaps subnet '${other.name}' (${other.addressPrefix}) of virtual network '${vnet}'.`);
        }
      }
      const { record, created } = await repo.upsertSubnet(vnet, name, prefix.text, input.serviceEndpoint ?? false);
      return { subnet: record, created };
    });
  }

  async patchSubnet(vnet: string, name: string, patch: Partial<SubnetInput>): Promise<SubnetRecord> {
    const current = await this.getSubnet(vnet, name);
    const { subnet } = await this.putSubnet(vnet, name, {
      addressPrefix: patch.addressPrefix ?? current.addressPrefix,
      serviceEndpoint: patch.serviceEndpoint ?? current.serviceEndpoint,
    });
    return subnet;
  }

  async deleteSubnet(vnet: string, name: string): Promise<void> {
    if (await this.repo.deleteSubnet(vnet, name)) return;
    await this.get(vnet);
    throw notFound(`Subnet '${name}' of virtual network '${vnet}' was not found.`);
  }
}
