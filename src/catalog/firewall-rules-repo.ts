// IP firewall rules of a server, stored with addresses in canonical text.
import type { Queryable } from './network-repo.js';

export interface FirewallRuleRecord {
  readonly name: string;
  readonly startIpAddress: string;
  readonly endIpAddress: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface Row {
  name: string;
  start_ip_address: string;
  end_ip_address: string;
  created_at: Date;
  updated_at: Date;
  inserted?: boolean;
}

function fromRow(r: Row): FirewallRuleRecord {
  return {
    name: r.name,
    startIpAddress: r.start_ip_address,
    endIpAddress: r.end_ip_address,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const COLUMNS = 'name, start_ip_address, end_ip_address, created_at, updated_at';

export class FirewallRulesRepo {
  constructor(private readonly db: Queryable) {}

  async list(serverId: number): Promise<FirewallRuleRecord[]> {
    const { rows } = await this.db.query<Row>(`select ${COLUMNS} from firewall_rules where server_id = $1 order by name`, [serverId]);
    return rows.map(fromRow);
  }

  async get(serverId: number, name: string): Promise<FirewallRuleRecord | null> {
    const { rows } = await this.db.query<Row>(`select ${COLUMNS} from firewall_rules where server_id = $1 and name = $2`, [serverId, name]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Inserts a new rule; null when one with that name exists. */
  async insert(serverId: number, name: string, start: string, end: string): Promise<FirewallRuleRecord | null> {
    const { rows } = await this.db.query<Row>(
      `insert into firewall_rules (server_id, name, start_ip_address, end_ip_address) values ($1, $2, $3, $4)
       on conflict (server_id, name) do nothing returning ${COLUMNS}`,
      [serverId, name, start, end],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Creates or replaces; `created` tells which. */
  async upsert(serverId: number, name: string, start: string, end: string): Promise<{ record: FirewallRuleRecord; created: boolean }> {
    const { rows } = await this.db.query<Row>(
      `insert into firewall_rules (server_id, name, start_ip_address, end_ip_address) values ($1, $2, $3, $4)
       on conflict (server_id, name) do update set start_ip_address = excluded.start_ip_address,
         end_ip_address = excluded.end_ip_address, updated_at = now()
       returning ${COLUMNS}, (xmax = 0) as inserted`,
      [serverId, name, start, end],
    );
    return { record: fromRow(rows[0]!), created: rows[0]!.inserted === true };
  }

  async delete(serverId: number, name: string): Promise<boolean> {
    const { rowCount } = await this.db.query('delete from firewall_rules where server_id = $1 and name = $2', [serverId, name]);
    return (rowCount ?? 0) > 0;
  }
}
