// Private endpoint connections of a server, keyed by the endpoint's identity: an Azure Private
// Link LinkID (decimal uint32 text, e.g. "4294967295") or an AWS VPC endpoint id ("vpce-…").
import type { Queryable } from './network-repo.js';

export type PrivateEndpointKind = 'azure-private-link' | 'aws-vpc-endpoint';
export type PrivateEndpointStatus = 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';

/** Pending connections the gateway may register per server before it stops adding more. */
export const MAX_PENDING_PER_SERVER = 1000;

const LINK_ID = /^(0|[1-9][0-9]{0,9})$/;
const VPCE_ID = /^vpce-[0-9a-z]{1,60}$/;

/** The kind an endpoint id belongs to, or null when it is neither form. */
export function endpointKindOf(id: string): PrivateEndpointKind | null {
  if (LINK_ID.test(id) && Number(id) <= 0xffffffff) return 'azure-private-link';
  if (VPCE_ID.test(id)) return 'aws-vpc-endpoint';
  return null;
}

export interface PrivateEndpointRecord {
  readonly endpointId: string;
  readonly kind: PrivateEndpointKind;
  readonly status: PrivateEndpointStatus;
  readonly description: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface Row {
  endpoint_id: string;
  kind: PrivateEndpointKind;
  status: PrivateEndpointStatus;
  description: string;
  created_at: Date;
  updated_at: Date;
  inserted?: boolean;
}

const fromRow = (r: Row): PrivateEndpointRecord => ({
  endpointId: r.endpoint_id,
  kind: r.kind,
  status: r.status,
  description: r.description,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const COLUMNS = 'endpoint_id, kind, status, description, created_at, updated_at';

export class PrivateEndpointsRepo {
  constructor(private readonly db: Queryable) {}

  async list(serverId: number): Promise<PrivateEndpointRecord[]> {
    const { rows } = await this.db.query<Row>(`select ${COLUMNS} from private_endpoint_connections where server_id = $1 order by endpoint_id`, [serverId]);
    return rows.map(fromRow);
  }

  async get(serverId: number, endpointId: string): Promise<PrivateEndpointRecord | null> {
    const { rows } = await this.db.query<Row>(`select ${COLUMNS} from private_endpoint_connections where server_id = $1 and endpoint_id = $2`, [
      serverId,
      endpointId,
    ]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async upsert(
    serverId: number,
    endpointId: string,
    kind: PrivateEndpointKind,
    status: PrivateEndpointStatus,
    description: string,
  ): Promise<{ record: PrivateEndpointRecord; created: boolean }> {
    const { rows } = await this.db.query<Row>(
      `insert into private_endpoint_connections (server_id, endpoint_id, kind, status, description) values ($1, $2, $3, $4, $5)
       on conflict (server_id, endpoint_id) do update set status = excluded.status, description = excluded.description, updated_at = now()
       returning ${COLUMNS}, (xmax = 0) as inserted`,
      [serverId, endpointId, kind, status, description],
    );
    return { record: fromRow(rows[0]!), created: rows[0]!.inserted === true };
  }

  /** Sets the status (and the description when given); null when there is no such connection. */
  async setStatus(serverId: number, endpointId: string, status: PrivateEndpointStatus, description: string | undefined): Promise<PrivateEndpointRecord | null> {
    const { rows } = await this.db.query<Row>(
      `update private_endpoint_connections set status = $3, description = coalesce($4, description), updated_at = now()
       where server_id = $1 and endpoint_id = $2 returning ${COLUMNS}`,
      [serverId, endpointId, status, description ?? null],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async delete(serverId: number, endpointId: string): Promise<boolean> {
    const { rowCount } = await this.db.query('delete from private_endpoint_connections where server_id = $1 and endpoint_id = $2', [serverId, endpointId]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * For the gateway: an endpoint identity seen on a connection to `serverName` becomes a Pending
   * connection unless it is known already. Idempotent. True only when a row was inserted; false
   * when it existed, the server does not exist, the id is not of `kind`'s form, or the server
   * already has MAX_PENDING_PER_SERVER pending connections.
   */
  async registerPending(serverName: string, endpointId: string, kind: PrivateEndpointKind): Promise<boolean> {
    if (endpointKindOf(endpointId) !== kind) return false;
    const { rowCount } = await this.db.query(
      `insert into private_endpoint_connections (server_id, endpoint_id, kind, status, description)
       select s.id, $2, $3, 'Pending', '' from servers s
       where s.name = $1
         and (select count(*) from private_endpoint_connections p where p.server_id = s.id and p.status = 'Pending') < $4
       on conflict (server_id, endpoint_id) do nothing`,
      [serverName, endpointId, kind, MAX_PENDING_PER_SERVER],
    );
    return (rowCount ?? 0) > 0;
  }
}
