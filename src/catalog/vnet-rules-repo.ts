// VNet rules of a server, read together with the subnet they name (which may be gone).
import type { Queryable } from './network-repo.js';

export interface VnetRuleRecord {
  readonly name: string;
  readonly virtualNetworkSubnetId: string;
  readonly ignoreMissingVnetServiceEndpoint: boolean;
  /** The named subnet as it is now: null when it does not exist (any more). */
  readonly subnet: { readonly serviceEndpoint: boolean } | null;
  /** The subnet's virtual network and the address its listener binds, while the subnet exists. */
  readonly vnet: { readonly name: string; readonly listenAddress: string | null } | null;
  /** Whether a gateway serves that network, when the service layer knows (not a catalog column). */
  readonly listener?: { readonly state: string; readonly problem?: string };
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface Row {
  name: string;
  virtual_network_subnet_id: string;
  ignore_missing_vnet_service_endpoint: boolean;
  subnet_service_endpoint: boolean | null;
  vnet_name: string | null;
  vnet_listen_address: string | null;
  created_at: Date;
  updated_at: Date;
}

const fromRow = (r: Row): VnetRuleRecord => ({
  name: r.name,
  virtualNetworkSubnetId: r.virtual_network_subnet_id,
  ignoreMissingVnetServiceEndpoint: r.ignore_missing_vnet_service_endpoint,
  subnet: r.subnet_service_endpoint === null ? null : { serviceEndpoint: r.subnet_service_endpoint },
  vnet: r.vnet_name === null ? null : { name: r.vnet_name, listenAddress: r.vnet_listen_address },
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const SELECT = `select r.name, r.virtual_network_subnet_id, r.ignore_missing_vnet_service_endpoint,
    s.service_endpoint as subnet_service_endpoint, v.name as vnet_name, v.listen_address as vnet_listen_address,
    r.created_at, r.updated_at
  from virtual_network_rules r
  left join subnets s on r.virtual_network_subnet_id = s.vnet_name || '/subnets/' || s.name
  left join virtual_networks v on v.name = s.vnet_name`;

export class VnetRulesRepo {
  constructor(private readonly db: Queryable) {}

  async list(serverId: number): Promise<VnetRuleRecord[]> {
    const { rows } = await this.db.query<Row>(`${SELECT} where r.server_id = $1 order by r.name`, [serverId]);
    return rows.map(fromRow);
  }

  async get(serverId: number, name: string): Promise<VnetRuleRecord | null> {
    const { rows } = await this.db.query<Row>(`${SELECT} where r.server_id = $1 and r.name = $2`, [serverId, name]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Inserts (`replace` false: nothing when the name exists) or creates-or-replaces. */
  async write(serverId: number, name: string, subnetId: string, ignoreMissing: boolean, replace: boolean): Promise<{ written: boolean; created: boolean }> {
    const onConflict = replace
      ? `do update set virtual_network_subnet_id = excluded.virtual_network_subnet_id,
           ignore_missing_vnet_service_endpoint = excluded.ignore_missing_vnet_service_endpoint, updated_at = now()`
      : 'do nothing';
    const { rows } = await this.db.query<{ inserted: boolean }>(
      `insert into virtual_network_rules (server_id, name, virtual_network_subnet_id, ignore_missing_vnet_service_endpoint)
       values ($1, $2, $3, $4) on conflict (server_id, name) ${onConflict} returning (xmax = 0) as inserted`,
      [serverId, name, subnetId, ignoreMissing],
    );
    return { written: rows.length > 0, created: rows[0]?.inserted === true };
  }

  async delete(serverId: number, name: string): Promise<boolean> {
    const { rowCount } = await this.db.query('delete from virtual_network_rules where server_id = $1 and name = $2', [serverId, name]);
    return (rowCount ?? 0) > 0;
  }
}
