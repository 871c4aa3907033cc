// The platform's maintenance access to its managed servers: the hidden superuser over each
// server's Unix socket. ManagedServers uses it for everything it does inside a server; a
// gateway-only process uses it alone, to read role verifiers for SCRAM (it runs no server).
// An attached server (engine/attached/) is reached the same way, through its relay's socket,
// as its own maintenance user: a superuser of the cluster (it reads pg_authid).
import pg from 'pg';
import type { AttachedServers } from './attached/attached-servers.js';
import type { PlatformPaths } from '../host/paths.js';
import { loadOrCreateSecret } from '../host/secrets.js';
import { MAINTENANCE_ROLE } from './roles.js';

export interface RoleVerifier {
  readonly rolpassword: string | null;
  readonly canLogin: boolean;
  readonly validUntil: Date | null;
}

/** Where an attached server's relay socket is and who logs in to it (AttachedServers in the
 * process that runs the relays; a view of the catalog in the gateway's other processes). */
export type AttachedLookup = Pick<AttachedServers, 'socketDir' | 'credentials'>;

export class MaintenanceConnections {
  private readonly pools = new Map<number, pg.Pool>();
  private attached: AttachedLookup | null = null;

  constructor(private readonly paths: Pick<PlatformPaths, 'serverSocketDir' | 'maintenanceSecret'>) {}

  /** Attached servers are reached through their relays, as their maintenance users. */
  useAttached(attached: AttachedLookup): void {
    this.attached = attached;
  }

  socketDir(id: number): string {
    return this.attached?.socketDir(id) ?? this.paths.serverSocketDir(id);
  }

  /** Who maintenance connections log in as. */
  private login(id: number): { user: string; password: string } {
    return this.attached?.credentials(id) ?? { user: MAINTENANCE_ROLE, password: this.password(id) };
  }

  password(id: number): string {
    return loadOrCreateSecret(this.paths.maintenanceSecret(id));
  }

  /** A maintenance connection (superuser, Unix socket). The caller ends it. */
  async connect(id: number, database = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.socketDir(id),
      ...this.login(id),
      database,
      application_name: 'pgwarden-maintenance',
    });
    client.on('error', () => undefined); // a server stopping under it: the pending query reports it
    await client.connect();
    return client;
  }

  /**
   * One maintenance query on a connection of its own, ended (the backend gone) before this
   * returns: the platform holds no idle session on the server, which an administrator's
   * `pg_terminate_backend` over every idle backend would otherwise fail on (42501). The pool
   * only bounds how many run at once.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(id: number, text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.pool(id).connect();
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    try {
      return await client.query<R>(text, values);
    } finally {
      client.release(true);
      await ended;
    }
  }

  /** The role's stored verifier, read by the platform for SCRAM at the gateway. */
  async roleVerifier(id: number, role: string): Promise<RoleVerifier | null> {
    const { rows } = await this.query<{ rolpassword: string | null; rolcanlogin: boolean; rolvaliduntil: Date | null }>(
      id,
      'select rolpassword, rolcanlogin, rolvaliduntil from pg_authid where rolname = $1',
      [role],
    );
    const r = rows[0];
    return r ? { rolpassword: r.rolpassword, canLogin: r.rolcanlogin, validUntil: r.rolvaliduntil } : null;
  }

  /** At most two maintenance connections at a time (see query). */
  private pool(id: number): pg.Pool {
    let p = this.pools.get(id);
    if (!p) {
      p = new pg.Pool({
        host: this.socketDir(id),
        ...this.login(id),
        database: 'postgres',
        application_name: 'pgwarden-maintenance',
        max: 2,
        idleTimeoutMillis: 30_000,
      });
      p.on('error', () => undefined); // a server restart drops idle connections: the next query reconnects
      this.pools.set(id, p);
    }
    return p;
  }

  /** Ends the server's pool (before it stops or restarts). */
  async closePool(id: number): Promise<void> {
    const p = this.pools.get(id);
    this.pools.delete(id);
    await p?.end().catch(() => undefined);
  }

  /** Ends every pool without stopping any server. */
  async closePools(): Promise<void> {
    await Promise.all([...this.pools.keys()].map((id) => this.closePool(id)));
  }
}
