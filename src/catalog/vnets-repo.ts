// Virtual networks (platform level) and their subnets.
import type { Queryable } from './network-repo.js';

export interface SubnetRecord {
  readonly vnetName: string;
  readonly name: string;
  readonly addressPrefix: string;
  readonly serviceEndpoint: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface VnetRecord {
  readonly name: string;
  readonly addressPrefixes: readonly string[];
  readonly listenAddress: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface VnetInput {
  readonly addressPrefixes: readonly string[];
  readonly listenAddress: string | null;
}

interface VnetRow {
  name: string;
  address_prefixes: string[];
  listen_address: string | null;
  created_at: Date;
  updated_at: Date;
  inserted?: boolean;
}

interface SubnetRow {
  vnet_name: string;
  name: string;
  address_prefix: string;
  service_endpoint: boolean;
  created_at: Date;
  updated_at: Date;
  inserted?: boolean;
}

const vnetFromRow = (r: VnetRow): VnetRecord => ({
  name: r.name,
  addressPrefixes: r.address_prefixes,
  listenAddress: r.listen_address,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const subnetFromRow = (r: SubnetRow): SubnetRecord => ({
  vnetName: r.vnet_name,
  name: r.name,
  addressPrefix: r.address_prefix,
  serviceEndpoint: r.service_endpoint,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const VNET = 'name, address_prefixes, listen_address, created_at, updated_at';
const SUBNET = 'vnet_name, name, address_prefix, service_endpoint, created_at, updated_at';

export class VnetsRepo {
  constructor(private readonly db: Queryable) {}

  async list(): Promise<VnetRecord[]> {
    const { rows } = await this.db.query<VnetRow>(`select ${VNET} from virtual_networks order by name`);
    return rows.map(vnetFromRow);
  }

  /** With `lock`, the row is held FOR UPDATE: subnet changes of one network are serialized. */
  async get(name: string, lock = false): Promise<VnetRecord | null> {
    const { rows } = await this.db.query<VnetRow>(`select ${VNET} from virtual_networks where name = $1${lock ? ' for update' : ''}`, [name]);
    return rows[0] ? vnetFromRow(rows[0]) : null;
  }

  /** The network that listens on this address, if any. */
  async byListenAddress(address: string): Promise<string | null> {
    const { rows } = await this.db.query<{ name: string }>('select name from virtual_networks where listen_address = $1', [address]);
    return rows[0]?.name ?? null;
  }

  async upsert(name: string, input: VnetInput): Promise<{ record: VnetRecord; created: boolean }> {
    const { rows } = await this.db.query<VnetRow>(
      `insert into virtual_networks (name, address_prefixes, listen_address) values ($1, $2, $3)
       on conflict (name) do update set address_prefixes = excluded.address_prefixes,
         listen_address = excluded.listen_address, updated_at = now()
       returning ${VNET}, (xmax = 0) as inserted`,
      [name, input.addressPrefixes, input.listenAddress],
    );
    return { record: vnetFromRow(rows[0]!), created: rows[0]!.inserted === true };
  }

  async delete(name: string): Promise<boolean> {
    const { rowCount } = await this.db.query('delete from virtual_networks where name = $1', [name]);
    return (rowCount ?? 0) > 0;
  }

  async subnets(vnetName: string): Promise<SubnetRecord[]> {
    const { rows } = await this.db.query<SubnetRow>(`select ${SUBNET} from subnets where vnet_name = $1 order by name`, [vnetName]);
    return rows.map(subnetFromRow);
  }

  async subnet(vnetName: string, name: string): Promise<SubnetRecord | null> {
    const { rows } = await this.db.query<SubnetRow>(`select ${SUBNET} from subnets where vnet_name = $1 and name = $2`, [vnetName, name]);
    return rows[0] ? subnetFromRow(rows[0]) : null;
  }

  async upsertSubnet(vnetName: string, name: string, addressPrefix: string, serviceEndpoint: boolean): Promise<{ record: SubnetRecord; created: boolean }> {
    const { rows } = await this.db.query<SubnetRow>(
      `insert into subnets (vnet_name, name, address_prefix, service_endpoint) values ($1, $2, $3, $4)
       on conflict (vnet_name, name) do update set address_prefix = excluded.address_prefix,
         service_endpoint = excluded.service_endpoint, updated_at = now()
       returning ${SUBNET}, (xmax = 0) as inserted`,
      [vnetName, name, addressPrefix, serviceEndpoint],
    );
    return { record: subnetFromRow(rows[0]!), created: rows[0]!.inserted === true };
  }

  async deleteSubnet(vnetName: string, name: string): Promise<boolean> {
    const { rowCount } = await this.db.query('delete from subnets where vnet_name = $1 and name = $2', [vnetName, name]);
    return (rowCount ?? 0) > 0;
  }
}
