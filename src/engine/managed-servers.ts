// Managed PostgreSQL servers on this host: create (initdb + roles), start, stop, remove, and
// supervision. Every server is a Cluster reached only through its Unix socket as the platform's
// maintenance superuser (maintenance.ts); backups and WAL archiving are in server-backups.ts.
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { Cluster } from './cluster.js';
import {
  archiveModuleAvailable,
  auditConfig,
  DEFAULT_PGAUDIT_SETTINGS,
  libraryConfig,
  pgauditAvailable,
  preloadLibraries,
  type PgAuditSettings,
} from './server-libraries.js';
import { ownerLibraries, parameterSettings, type ParameterValues } from './server-parameters.js';
import { alignReplication, inEveryDatabase, installExtensionTrigger, revokeDataRoles } from './server-policies.js';
import { EXTENSION_GRANTS } from './extension-allowlist.js';
import { findPgBinaries } from '../host/pg-binaries.js';
import type { OsAccount } from '../host/os-user.js';
import type { ServerAccounts } from '../host/os-accounts.js';
import { adoptTree } from '../host/ownership.js';
import { ADMIN_GROUP_ROLE, MAINTENANCE_ROLE, adminGroupStatements, ident, literal } from './roles.js';
import type { PlatformPaths } from '../host/paths.js';
import { buildScramVerifier } from '../auth/scram/verifier.js';
import { writeSecretFile } from '../host/secrets.js';
import type { EncryptedVolume } from '../storage/encrypted-volume.js';
import type { BackupManifest, ProgressFn } from '../storage/backup/index.js';
import { MaintenanceConnections, type RoleVerifier } from './maintenance.js';
import { ServerBackups, type BackupWiring } from './server-backups.js';

export type { RoleVerifier } from './maintenance.js';
export type { BackupWiring } from './server-backups.js';

export interface ManagedServerEvents {
  crashed: [id: number, info: { code: number | null; signal: string | null }];
  restarted: [id: number];
  restartFailed: [id: number, error: Error];
  /** Memberships in pg_read_all_data / pg_write_all_data the platform revoked at start. */
  dataRolesRevoked: [id: number, revoked: string[]];
}

/** Who gets a new volume's data directory. */
export type VolumeOwner = Pick<OsAccount, 'uid' | 'gid'>;

/** For the volume operations that make nothing (open, close, destroy): no owner is used. */
const NOT_MAKING: VolumeOwner = Object.freeze({ uid: 0, gid: 0 });

export class ManagedServers extends EventEmitter<ManagedServerEvents> {
  private readonly clusters = new Map<number, Cluster>();
  /** The maintenance superuser's connections to each server. */
  readonly maintenance: MaintenanceConnections;
  private readonly backups: ServerBackups | null;
  /** pgAudit settings per server, written into its configuration at every start. */
  private readonly audit = new Map<number, PgAuditSettings>();
  /** The owner's server parameters (configurations), written into its configuration at every start. */
  private readonly parameters = new Map<number, ParameterValues>();
  /** Servers being created: their configuration is written once initdb is done, not during it. */
  private readonly creating = new Set<number>();

  constructor(
    private readonly paths: PlatformPaths,
    /** Each server runs as an OS user of its own. */
    private readonly accounts: ServerAccounts,
    /** Each server's encrypted volume (its data directory, WAL and temporary files live in it);
     * `owner` gets the volume's data directory when the volume is made. */
    private readonly volumeOf: (id: number, owner: VolumeOwner) => EncryptedVolume,
    backups: BackupWiring | null = null,
  ) {
    super();
    this.maintenance = new MaintenanceConnections(paths);
    this.backups = backups ? new ServerBackups(paths, accounts, this.maintenance, backups) : null;
  }

  /** The volume for anything but making it (the owner only matters when it is made). */
  private volume(id: number): EncryptedVolume {
    return this.volumeOf(id, NOT_MAKING);
  }

  /** Unlocks the server's volume (made with its key on first use when `create`, owned by the
   * server's own OS user). */
  async openVolume(id: number, create = false): Promise<void> {
    const volume = create ? this.volumeOf(id, await this.accounts.server(id)) : this.volume(id);
    await volume.open(create);
  }

  /** Locks the volume: key out of memory and the kernel. Only once the server has stopped. */
  async closeVolume(id: number): Promise<void> {
    if (this.isRunning(id)) throw new Error(`server ${id} is running: its volume cannot be locked`);
    await this.volume(id).close();
  }

  volumeIsOpen(id: number): Promise<boolean> {
    return this.volume(id).isOpen();
  }

  private requireBackups(): ServerBackups {
    if (!this.backups) throw new Error('backups are not configured');
    return this.backups;
  }

  /** A full base backup, encrypted on its way to the repository. */
  async backup(id: number, onProgress?: ProgressFn): Promise<BackupManifest> {
    return this.requireBackups().backup(id, onProgress);
  }

  /** Switches to a new WAL segment and waits (up to 60 s) until the old one is archived. */
  async archiveCurrentWal(id: number): Promise<void> {
    await this.requireBackups().archiveCurrentWal(id);
  }

  async listBackups(id: number): Promise<BackupManifest[]> {
    return this.backups ? this.backups.list(id) : [];
  }

  /** A new server `id` from the source's latest backup before `targetTime` plus its archived WAL
   * up to that time; started when done. Its maintenance secret is the source's (the roles are a
   * copy of the source's). */
  async restore(id: number, sourceId: number, targetTime: Date | undefined, onProgress?: ProgressFn): Promise<void> {
    const backups = this.requireBackups();
    // A running source's current WAL is archived first, so a restore can reach "now".
    if (this.isRunning(sourceId)) await backups.archiveCurrentWal(sourceId);
    // Like the reference service, a restored server has its source's server parameters.
    if (!this.parameters.has(id) && this.parameters.has(sourceId)) this.parameters.set(id, this.parameters.get(sourceId)!);
    await this.openVolume(id, true); // the copy gets its own volume, key and OS user
    writeSecretFile(this.paths.maintenanceSecret(id), this.maintenancePassword(sourceId));
    await backups.restoreData(id, sourceId, targetTime, onProgress);
    // The copy carries the source's log; its own begins now.
    rmSync(path.join(this.paths.serverData(id), 'log'), { recursive: true, force: true });
    await this.start(id);
  }

  private async cluster(id: number): Promise<Cluster> {
    const known = this.clusters.get(id);
    if (known) return known;
    const account = await this.accounts.server(id);
    let c = this.clusters.get(id); // made by a call that resolved the account first
    if (!c) {
      const archive = this.backups?.clusterSettings(id, archiveModuleAvailable(findPgBinaries()));
      c = new Cluster({
        dataDir: this.paths.serverData(id),
        socketDir: this.paths.serverSocketDir(id),
        account,
        settings: { max_connections: 250, ...libraryConfig(findPgBinaries()), ...archive?.settings },
        hbaLines: archive?.hbaLines ?? [],
      });
      c.on('crashed', (info) => this.emit('crashed', id, info));
      c.on('restarted', () => this.emit('restarted', id));
      c.on('restartFailed', (err) => this.emit('restartFailed', id, err));
      this.clusters.set(id, c);
    }
    return c;
  }

  socketDir(id: number): string {
    return this.maintenance.socketDir(id);
  }

  isRunning(id: number): boolean {
    return this.clusters.get(id)?.running ?? false;
  }

  postmasterPid(id: number): number | null {
    return this.clusters.get(id)?.pid ?? null;
  }

  maintenancePassword(id: number): string {
    return this.maintenance.password(id);
  }

  /** A maintenance connection (superuser, Unix socket). The caller ends it. */
  connect(id: number, database = 'postgres'): Promise<pg.Client> {
    return this.maintenance.connect(id, database);
  }

  /** initdb, start, and create the administrator (never a superuser). */
  async create(id: number, admin: { login: string; password: string }): Promise<void> {
    const cluster = await this.cluster(id);
    this.creating.add(id);
    try {
      await this.openVolume(id, true);
      await cluster.init(MAINTENANCE_ROLE, this.maintenancePassword(id));
    } finally {
      this.creating.delete(id);
    }
    cluster.writeConfig(this.auditExtra(id));
    await this.backups?.ensureAgent(id);
    await cluster.start();
    const client = await this.connect(id);
    try {
      const verifier = buildScramVerifier(admin.password);
      const sql = [
        ...adminGroupStatements(),
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
    await this.afterStart(id);
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
    const { rows } = await this.maintenance.query(id, 'select 1 from pg_roles where rolname = $1', [role]);
    return rows.length > 0;
  }

  /** Creates (or re-keys) a token-login role whose password verifier only the platform can
   * answer; `admin` makes it an administrator like the server's own (not a superuser). */
  async ensureTokenRole(id: number, role: string, verifier: string, admin: boolean): Promise<void> {
    // An attached cluster was not made by pgwarden: its administrators' group may not exist yet.
    if (admin && !(await this.roleExists(id, ADMIN_GROUP_ROLE))) for (const q of adminGroupStatements()) await this.maintenance.query(id, q);
    const exists = await this.roleExists(id, role);
    const attrs = admin ? `login createdb createrole nosuperuser in role ${ident(ADMIN_GROUP_ROLE)}` : 'login nosuperuser';
    if (exists) await this.maintenance.query(id, `alter role ${ident(role)} login password ${literal(verifier)}`);
    else await this.maintenance.query(id, `create role ${ident(role)} ${attrs} password ${literal(verifier)}`);
  }

  /** A principal that was removed: its role can no longer log in (its objects stay). */
  async disableLogin(id: number, role: string): Promise<void> {
    if (await this.roleExists(id, role)) await this.maintenance.query(id, `alter role ${ident(role)} nologin`);
  }

  /** Ends the maintenance pools without stopping any server. */
  closePools(): Promise<void> {
    return this.maintenance.closePools();
  }

  /** The role's stored verifier, read by the platform for SCRAM at the gateway. */
  roleVerifier(id: number, role: string): Promise<RoleVerifier | null> {
    return this.maintenance.roleVerifier(id, role);
  }

  private auditExtra(id: number): Record<string, string | number | boolean> {
    const values = this.parameters.get(id) ?? {};
    const owner = ownerLibraries(values);
    return {
      ...parameterSettings(values),
      ...(owner.length ? { shared_preload_libraries: preloadLibraries(findPgBinaries(), owner) } : {}),
      ...auditConfig(findPgBinaries(), this.audit.get(id) ?? DEFAULT_PGAUDIT_SETTINGS),
    };
  }

  /** The owner's server parameters, used from the next configuration write (start, reload, restart). */
  setParameters(id: number, values: ParameterValues): void {
    this.parameters.set(id, values);
  }

  parametersOf(id: number): ParameterValues {
    return this.parameters.get(id) ?? {};
  }

  /** Writes the configuration and reloads it; waits until the postmaster has read it and fails
   * when PostgreSQL found an error in the file. */
  async reloadConfig(id: number): Promise<void> {
    const cluster = await this.cluster(id);
    cluster.writeConfig(this.auditExtra(id));
    if (!cluster.running) return;
    const client = await this.connect(id);
    try {
      const { rows } = await client.query<{ t: string }>('select pg_conf_load_time()::text as t');
      await client.query('select pg_reload_conf()');
      const deadline = Date.now() + 10_000;
      for (;;) {
        const { rows: now } = await client.query<{ t: string }>('select pg_conf_load_time()::text as t');
        if (now[0]!.t !== rows[0]!.t) break;
        if (Date.now() > deadline) throw new Error('PostgreSQL did not reload its configuration within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      const { rows: errors } = await client.query<{ name: string | null; error: string }>(
        // A restart-only parameter changed in the file reads 'setting could not be applied' until the
        // restart (its value was checked before it was written; a restart reports what PostgreSQL thinks of it).
        `select f.name, f.error from pg_file_settings f left join pg_settings s on s.name = f.name
          where f.error is not null and s.context is distinct from 'postmaster'`,
      );
      if (errors.length) throw new Error(`PostgreSQL refused the configuration: ${errors.map((e) => `${e.name ?? ''} ${e.error}`.trim()).join('; ')}`);
      await alignReplication(client);
    } finally {
      await client.end();
    }
  }

  /** Stops and starts the server's postmaster (open sessions end) with the configuration written anew. */
  async restart(id: number): Promise<void> {
    await this.maintenance.closePool(id);
    await this.clusters.get(id)?.stop();
    const cluster = await this.cluster(id);
    cluster.writeConfig(this.auditExtra(id));
    await cluster.start();
    await this.afterStart(id);
  }

  /** Current values of `names` in the running server, in PostgreSQL's base units. */
  async liveSettings(id: number, names: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await this.maintenance.query<{ name: string; setting: string }>(id, 'select name, setting from pg_settings where name = any($1)', [names]);
    return new Map(rows.map((r) => [r.name.toLowerCase(), r.setting]));
  }

  /** Creates an extension as the platform's superuser, for the administrators (on the allow-list:
   * checked by the caller), and grants them what it needs. */
  async createExtension(id: number, name: string, database: string): Promise<{ created: boolean; version: string }> {
    const client = await this.connect(id, database);
    try {
      const before = await client.query('select 1 from pg_extension where extname = $1', [name]);
      await client.query(`create extension if not exists ${ident(name)}`);
      for (const q of EXTENSION_GRANTS[name] ?? []) await client.query(q.replace('%ROLE%', ident(ADMIN_GROUP_ROLE)));
      const { rows } = await client.query<{ extversion: string }>('select extversion from pg_extension where extname = $1', [name]);
      return { created: before.rows.length === 0, version: rows[0]!.extversion };
    } finally {
      await client.end();
    }
  }

  /** What the platform puts right at every start (engine/server-policies.ts). */
  private async afterStart(id: number): Promise<void> {
    const client = await this.connect(id);
    try {
      const revoked = await revokeDataRoles(client);
      if (revoked.length) this.emit('dataRolesRevoked', id, revoked);
      await alignReplication(client);
      const pgaudit = pgauditAvailable(findPgBinaries());
      await inEveryDatabase(
        client,
        (db) => this.connect(id, db),
        (c) => installExtensionTrigger(c, pgaudit),
      );
    } finally {
      await client.end();
    }
  }

  /** Applies audit settings: kept for later starts, and reloaded into a running server. */
  async applyAuditSettings(id: number, settings: PgAuditSettings): Promise<void> {
    this.audit.set(id, settings);
    const cluster = this.clusters.get(id);
    // During initdb (PG_VERSION already there) a config written now would be root's and break it.
    if (!cluster?.initialized || this.creating.has(id)) return;
    cluster.writeConfig(this.auditExtra(id));
    if (cluster.running) await this.maintenance.query(id, 'select pg_reload_conf()');
  }

  /** Where the server writes its log (jsonlog files). */
  logDir(id: number): string {
    return path.join(this.paths.serverData(id), 'log');
  }

  async start(id: number): Promise<void> {
    const cluster = await this.cluster(id);
    await this.openVolume(id);
    // A data dir made for another OS user (one shared account before, or a moved data dir) becomes this server's.
    adoptTree(path.dirname(this.paths.serverData(id)), cluster.options.account);
    cluster.writeConfig(this.auditExtra(id));
    await this.backups?.ensureAgent(id);
    await cluster.start();
    await this.afterStart(id);
  }

  async stop(id: number): Promise<void> {
    await this.maintenance.closePool(id);
    await this.clusters.get(id)?.stop();
    await this.backups?.stopAgent(id); // after the server: its last segments are archived at shutdown
    await this.volume(id).close(); // after the server: removing the key under PostgreSQL makes it PANIC
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.clusters.keys()].map((id) => this.stop(id)));
  }

  /** Stops the server and removes its data, socket directory, secrets and OS user. */
  async remove(id: number): Promise<void> {
    await this.stop(id);
    await this.volume(id).destroy();
    this.clusters.get(id)?.destroy();
    this.clusters.delete(id);
    this.parameters.delete(id);
    rmSync(this.paths.serverSocketDir(id), { recursive: true, force: true });
    this.backups?.removeAgentDir(id);
    rmSync(this.paths.serverVolume(id), { recursive: true, force: true });
    rmSync(this.paths.maintenanceSecret(id), { force: true });
    await this.accounts.removeServer(id); // last: nothing of it is left to own
  }
}
