// Managed PostgreSQL servers on this host: create (initdb + roles), start, stop, remove, and
// supervision. Every server is a Cluster reached only through its Unix socket as the platform's
// maintenance superuser.
import { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Cluster } from './cluster.js';
import { auditConfig, libraryConfig, pgauditAvailable } from './server-libraries.js';
import { DEFAULT_AUDIT_SETTINGS, type AuditSettings } from '../catalog/audit-settings-repo.js';
import { findPgBinaries } from './pg-binaries.js';
import type { OsAccount } from './os-user.js';
import { ADMIN_GROUP_ROLE, MAINTENANCE_ROLE, ident, literal } from './roles.js';
import type { PlatformPaths } from '../platform/paths.js';
import { loadOrCreateSecret } from '../platform/secrets.js';
import { buildScramVerifier } from '../auth/scram/verifier.js';

export interface ManagedServerEvents {
  crashed: [id: number, info: { code: number | null; signal: string | null }];
  restarted: [id: number];
  restartFailed: [id: number, error: Error];
}

export interface RoleVerifier {
  readonly rolpassword: string | null;
  readonly canLogin: boolean;
  readonly validUntil: Date | null;
}

export class ManagedServers extends EventEmitter<ManagedServerEvents> {
  private readonly clusters = new Map<number, Cluster>();
  private readonly pools = new Map<number, pg.Pool>();
  /** pgAudit settings per server, written into its configuration at every start. */
  private readonly audit = new Map<number, AuditSettings>();

  constructor(
    private readonly paths: PlatformPaths,
    private readonly account: OsAccount,
  ) {
    super();
  }

  private cluster(id: number): Cluster {
    let c = this.clusters.get(id);
    if (!c) {
      c = new Cluster({
        dataDir: this.paths.serverData(id),
        socketDir: this.paths.serverSocketDir(id),
        account: this.account,
        settings: { max_connections: 250, ...libraryConfig(findPgBinaries()) },
      });
      c.on('crashed', (info) => this.emit('crashed', id, info));
      c.on('restarted', () => this.emit('restarted', id));
      c.on('restartFailed', (err) => this.emit('restartFailed', id, err));
      this.clusters.set(id, c);
    }
    return c;
  }

  socketDir(id: number): string {
    return this.paths.serverSocketDir(id);
  }

  isRunning(id: number): boolean {
    return this.clusters.get(id)?.running ?? false;
  }

  postmasterPid(id: number): number | null {
    return this.clusters.get(id)?.pid ?? null;
  }

  maintenancePassword(id: number): string {
    return loadOrCreateSecret(this.paths.maintenanceSecret(id));
  }

  /** A maintenance connection (superuser, Unix socket). The caller ends it. */
  async connect(id: number, database = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({
      host: this.socketDir(id),
      user: MAINTENANCE_ROLE,
      password: this.maintenancePassword(id),
      database,
      application_name: 'pgwarden-maintenance',
    });
    await client.connect();
    return client;
  }

  /** initdb, start, and create the administrator (never a superuser). */
  async create(id: number, admin: { login: string; password: string }): Promise<void> {
    const cluster = this.cluster(id);
    mkdirSync(path.dirname(this.paths.serverData(id)), { recursive: true, mode: 0o711 });
    await cluster.init(MAINTENANCE_ROLE, this.maintenancePassword(id));
    cluster.writeConfig(this.auditExtra(id));
    await cluster.start();
    const client = await this.connect(id);
    try {
      const verifier = buildScramVerifier(admin.password);
      const sql = [
        `create role ${ident(ADMIN_GROUP_ROLE)} nologin`,
        `grant pg_monitor, pg_signal_backend to ${ident(ADMIN_GROUP_ROLE)}`,
        `grant all on database postgres to ${ident(ADMIN_GROUP_ROLE)}`,
        `grant all on schema public to ${ident(ADMIN_GROUP_ROLE)}`,
        `create role ${ident(admin.login)} login createdb createrole nosuperuser noreplication nobypassrls ` +
          `in role ${ident(ADMIN_GROUP_ROLE)} password ${literal(verifier)}`,
      ];
      for (const q of sql) await client.query(q);
      // pgAudit's event triggers report DDL objects (new databases get it from template1).
      if (pgauditAvailable(findPgBinaries())) await client.query('create extension if not exists pgaudit');
    } finally {
      await client.end();
    }
    const tpl = await this.connect(id, 'template1');
    try {
      await tpl.query(`grant all on schema public to ${ident(ADMIN_GROUP_ROLE)}`);
      if (pgauditAvailable(findPgBinaries())) await tpl.query('create extension if not exists pgaudit');
    } finally {
      await tpl.end();
    }
  }

  async setPassword(id: number, role: string, password: string): Promise<void> {
    const client = await this.connect(id);
    try {
      await client.query(`alter role ${ident(role)} password ${literal(buildScramVerifier(password))}`);
    } finally {
      await client.end();
    }
  }

  /** Whether a role exists on the server. */
  async roleExists(id: number, role: string): Promise<boolean> {
    const { rows } = await this.pool(id).query('select 1 from pg_roles where rolname = $1', [role]);
    return rows.length > 0;
  }

  /** Creates (or re-keys) a token-login role whose password verifier only the platform can
   * answer; `admin` makes it an administrator like the server's own (not a superuser). */
  async ensureTokenRole(id: number, role: string, verifier: string, admin: boolean): Promise<void> {
    const exists = await this.roleExists(id, role);
    const attrs = admin ? `login createdb createrole nosuperuser in role ${ident(ADMIN_GROUP_ROLE)}` : 'login nosuperuser';
    if (exists) await this.pool(id).query(`alter role ${ident(role)} login password ${literal(verifier)}`);
    else await this.pool(id).query(`create role ${ident(role)} ${attrs} password ${literal(verifier)}`);
  }

  /** A principal that was removed: its role can no longer log in (its objects stay). */
  async disableLogin(id: number, role: string): Promise<void> {
    if (await this.roleExists(id, role)) await this.pool(id).query(`alter role ${ident(role)} nologin`);
  }

  /** A small pool of maintenance connections, for the platform's frequent look-ups. */
  private pool(id: number): pg.Pool {
    let p = this.pools.get(id);
    if (!p) {
      p = new pg.Pool({
        host: this.socketDir(id),
        user: MAINTENANCE_ROLE,
        password: this.maintenancePassword(id),
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

  /** Ends the maintenance pools without stopping any server (a gateway-only process). */
  async closePools(): Promise<void> {
    await Promise.all([...this.pools.keys()].map((id) => this.closePool(id)));
  }

  private async closePool(id: number): Promise<void> {
    const p = this.pools.get(id);
    this.pools.delete(id);
    await p?.end().catch(() => undefined);
  }

  /** The role's stored verifier, read by the platform for SCRAM at the gateway. */
  async roleVerifier(id: number, role: string): Promise<RoleVerifier | null> {
    const { rows } = await this.pool(id).query<{ rolpassword: string | null; rolcanlogin: boolean; rolvaliduntil: Date | null }>(
      'select rolpassword, rolcanlogin, rolvaliduntil from pg_authid where rolname = $1',
      [role],
    );
    const r = rows[0];
    return r ? { rolpassword: r.rolpassword, canLogin: r.rolcanlogin, validUntil: r.rolvaliduntil } : null;
  }

  private auditExtra(id: number): Record<string, string | number | boolean> {
    return auditConfig(findPgBinaries(), this.audit.get(id) ?? DEFAULT_AUDIT_SETTINGS);
  }

  /** Applies audit settings: kept for later starts, and reloaded into a running server. */
  async applyAuditSettings(id: number, settings: AuditSettings): Promise<void> {
    this.audit.set(id, settings);
    const cluster = this.clusters.get(id);
    if (!cluster?.initialized) return;
    cluster.writeConfig(this.auditExtra(id));
    if (cluster.running) await this.pool(id).query('select pg_reload_conf()');
  }

  /** Where the server writes its log (jsonlog files). */
  logDir(id: number): string {
    return path.join(this.paths.serverData(id), 'log');
  }

  async start(id: number): Promise<void> {
    const cluster = this.cluster(id);
    cluster.writeConfig(this.auditExtra(id));
    await cluster.start();
  }

  async stop(id: number): Promise<void> {
    await this.closePool(id);
    await this.clusters.get(id)?.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.clusters.keys()].map((id) => this.stop(id)));
  }

  /** Stops the server and removes its data, socket directory and secrets. */
  async remove(id: number): Promise<void> {
    const cluster = this.cluster(id);
    await this.stop(id);
    cluster.destroy();
    rmSync(path.dirname(this.paths.serverData(id)), { recursive: true, force: true });
    rmSync(this.paths.maintenanceSecret(id), { force: true });
    this.clusters.delete(id);
  }
}
