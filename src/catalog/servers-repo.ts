// Server rows in the catalog.
import type pg from 'pg';

export type ServerState = 'Creating' | 'Ready' | 'Stopped' | 'Disabled' | 'Inaccessible' | 'Dropping';
export type Toggle = 'Enabled' | 'Disabled';
export type MinimalTlsVersion = 'TLS1_2' | 'TLS1_3' | 'TLSEnforcementDisabled';
/** none: one server connection per client session; session: a client's server connection is
 * kept warm for the next client of the same (role, database, parameters); transaction: lent for
 * one transaction at a time. */
export type PoolMode = 'none' | 'session' | 'transaction';
/** managed: a postmaster pgwarden runs on its own host; attached: PostgreSQL an HA engine
 * (Patroni, CloudNativePG) runs elsewhere, reached over TLS at its endpoints. */
export type ServerMode = 'managed' | 'attached';

export interface ServerRecord {
  readonly id: number;
  readonly name: string;
  readonly administratorLogin: string;
  readonly sslEnforcement: Toggle;
  readonly minimalTlsVersion: MinimalTlsVersion;
  readonly publicNetworkAccess: Toggle;
  /** Disabled: only token logins are accepted. */
  readonly passwordAuth: Toggle;
  readonly poolMode: PoolMode;
  /** Server connections per (role, database, startup parameters) when pooling. */
  readonly poolSize: number;
  readonly state: ServerState;
  readonly hostId: string;
  /** Absent (records made in code before attached servers existed): managed. */
  readonly mode?: ServerMode;
  /** Attached: `host:port` of every node; the writable one is the primary. Managed: empty. */
  readonly endpoints?: readonly string[];
  /** Attached: the PEM CA the nodes' certificates are verified against (verify-full). */
  readonly tlsCa?: string | null;
  /** Attached: the superuser pgwarden reads verifiers and creates principal roles as. */
  readonly maintenanceUser?: string | null;
  /** Attached: its password, sealed (`sealed:v1:...`); opened only where a connection is made. */
  readonly maintenancePasswordSealed?: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface Row {
  id: number;
  name: string;
  administrator_login: string;
  ssl_enforcement: Toggle;
  minimal_tls_version: MinimalTlsVersion;
  public_network_access: Toggle;
  password_auth: Toggle;
  pool_mode: PoolMode;
  pool_size: number;
  state: ServerState;
  host_id: string;
  mode: ServerMode;
  endpoints: string[];
  tls_ca: string | null;
  maintenance_user: string | null;
  maintenance_password: string | null;
  created_at: Date;
  updated_at: Date;
}

function fromRow(r: Row): ServerRecord {
  return {
    id: r.id,
    name: r.name,
    administratorLogin: r.administrator_login,
    sslEnforcement: r.ssl_enforcement,
    minimalTlsVersion: r.minimal_tls_version,
    publicNetworkAccess: r.public_network_access,
    passwordAuth: r.password_auth,
    poolMode: r.pool_mode,
    poolSize: r.pool_size,
    state: r.state,
    hostId: r.host_id,
    mode: r.mode,
    endpoints: r.endpoints,
    tlsCa: r.tls_ca,
    maintenanceUser: r.maintenance_user,
    maintenancePasswordSealed: r.maintenance_password,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export type ServerSettings = Pick<ServerRecord, 'sslEnforcement' | 'minimalTlsVersion' | 'publicNetworkAccess'> & {
  readonly passwordAuth?: Toggle;
  readonly poolMode?: PoolMode;
  readonly poolSize?: number;
};

export function isAttached(s: Pick<ServerRecord, 'mode'>): boolean {
  return s.mode === 'attached';
}

export class ServersRepo {
  /**
   * `stateWritten` runs after each state this repository writes, before `setState` returns: the
   * servers part passes its gateway's snapshot reload, so that a create, start, stop, drop,
   * restore or key revalidation returns once this process's gateway decides from the new state
   * (other processes learn it from the change feed). Without it a client connecting at once could
   * still be told the server is being created.
   */
  constructor(
    private readonly db: pg.Pool,
    private readonly stateWritten: () => Promise<void> = async () => undefined,
  ) {}

  async list(): Promise<ServerRecord[]> {
    const { rows } = await this.db.query<Row>('select * from servers order by name');
    return rows.map(fromRow);
  }

  async get(name: string): Promise<ServerRecord | null> {
    const { rows } = await this.db.query<Row>('select * from servers where name = $1', [name]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Inserts a new server in state Creating; returns null when the name is taken. */
  async insert(input: { name: string; administratorLogin: string; hostId: string } & ServerSettings): Promise<ServerRecord | null> {
    const { rows } = await this.db.query<Row>(
      `insert into servers (name, administrator_login, ssl_enforcement, minimal_tls_version, public_network_access, state, host_id)
       values ($1, $2, $3, $4, $5, 'Creating', $6) on conflict (name) do nothing returning *`,
      [input.name, input.administratorLogin, input.sslEnforcement, input.minimalTlsVersion, input.publicNetworkAccess, input.hostId],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Inserts an attached server, Ready at once (there is nothing to create); null when the name is taken. */
  async insertAttached(
    input: { name: string; administratorLogin: string; hostId: string } & ServerSettings & {
        endpoints: readonly string[];
        tlsCa: string;
        maintenanceUser: string;
        maintenancePasswordSealed: string;
      },
  ): Promise<ServerRecord | null> {
    const { rows } = await this.db.query<Row>(
      `insert into servers (name, administrator_login, ssl_enforcement, minimal_tls_version, public_network_access, state, host_id,
         mode, endpoints, tls_ca, maintenance_user, maintenance_password)
       values ($1, $2, $3, $4, $5, 'Ready', $6, 'attached', $7, $8, $9, $10) on conflict (name) do nothing returning *`,
      [
        input.name,
        input.administratorLogin,
        input.sslEnforcement,
        input.minimalTlsVersion,
        input.publicNetworkAccess,
        input.hostId,
        input.endpoints,
        input.tlsCa,
        input.maintenanceUser,
        input.maintenancePasswordSealed,
      ],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async update(name: string, settings: Partial<ServerSettings>): Promise<ServerRecord | null> {
    const { rows } = await this.db.query<Row>(
      `update servers set ssl_enforcement = coalesce($2, ssl_enforcement),
         minimal_tls_version = coalesce($3, minimal_tls_version),
         public_network_access = coalesce($4, public_network_access),
         password_auth = coalesce($5, password_auth),
         pool_mode = coalesce($6, pool_mode),
         pool_size = coalesce($7, pool_size),
         updated_at = now()
       where name = $1 returning *`,
      [
        name,
        settings.sslEnforcement ?? null,
        settings.minimalTlsVersion ?? null,
        settings.publicNetworkAccess ?? null,
        settings.passwordAuth ?? null,
        settings.poolMode ?? null,
        settings.poolSize ?? null,
      ],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async setState(id: number, state: ServerState): Promise<void> {
    await this.db.query('update servers set state = $2, updated_at = now() where id = $1', [id, state]);
    await this.stateWritten();
  }

  async delete(id: number): Promise<void> {
    await this.db.query('delete from servers where id = $1', [id]);
  }
}
