// One platform on this host: catalog, managed servers, control API, gateway. `pgwarden up`
// starts it; SIGINT/SIGTERM stop it cleanly, servers last.
import { existsSync, mkdirSync, readFileSync, chmodSync, writeFileSync } from 'node:fs';
import { randomBytes, X509Certificate } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { platformPaths, type PlatformPaths } from '../host/paths.js';
import { acquireLock } from '../host/lock.js';
import { loadOrCreateCa, issueServerCertificate, type PlatformCa } from '../host/ca.js';
import { SecretSealer, loadOrCreateKeyFile, loadOrCreateSecret, writeSecretFile } from '../host/secrets.js';
import { webhookSecretAad } from '../threat/notify/index.js';
import { createMetrics, catalogGauges } from '../services/metrics.js';
import { ServerService } from '../services/server-service.js';
import { PlatformAccounts, sweepOrphanAccounts } from '../host/os-accounts.js';
import type { OsAccount } from '../host/os-user.js';
import { findPgBinaries } from '../host/pg-binaries.js';
import { nestedAuditOnly } from '../engine/server-libraries.js';
import { ManagedServers } from '../engine/managed-servers.js';
import type { Cluster } from '../engine/cluster.js';
import { embeddedCatalogConnection, startEmbeddedCatalog } from '../catalog/embedded.js';
import { migrate } from '../catalog/migrations.js';
import { ChangeFeed } from '../catalog/change-feed.js';
import { SnapshotStore } from '../catalog/snapshot.js';
import { ServersRepo } from '../catalog/servers-repo.js';
import { TokensRepo } from '../catalog/tokens-repo.js';
import { PrivateEndpointsRepo } from '../catalog/private-endpoints-repo.js';
import { EventBus, now } from '../events/bus.js';
import { AuditLog, type AuditFailurePolicy } from '../audit/audit-log.js';
import { PgAuditIngest } from '../audit/pgaudit-ingest.js';
import { buildApi } from '../control/app.js';
import { serverRoutes } from '../control/routes/servers.js';
import { networkRoutes } from '../control/routes/network.js';
import { NetworkService } from '../services/network-service.js';
import { IdentityService } from '../services/identity-service.js';
import { IdentityRepo } from '../catalog/identity-repo.js';
import { identityRoutes } from '../control/routes/identity.js';
import { auditLogRoutes, auditSettingsRoutes } from '../control/routes/audit.js';
import { AuditSettingsRepo } from '../catalog/audit-settings-repo.js';
import { PrincipalKeys } from '../auth/principal-keys.js';
import { TokenVerifiers } from '../auth/token-verifiers.js';
import { platformRoutes, type HealthReport } from '../control/routes/platform.js';
import { Gateway } from '../gateway/gateway.js';
import type { GatewayLimits, ListenerSpec } from '../gateway/context.js';
import { parseTrustedCidrs } from '../gateway/proxy-stage.js';
import { GatewayCertificates } from '../gateway/tls-certificates.js';
import { pino, type Logger } from 'pino';
import { ThreatRepo } from '../catalog/threat-repo.js';
import type { ThreatEngine } from '../threat/engine.js';
import { startThreatEngine, type SmtpSettings } from '../threat/start.js';
import { threatRoutes } from '../control/routes/threat.js';
import { backupRoutes } from '../control/routes/backups.js';
import { keyRoutes } from '../control/routes/keys.js';
import { configurationRoutes } from '../control/routes/configurations.js';
import { ConfigurationService } from '../services/configuration-service.js';
import { ServerParametersRepo } from '../catalog/server-parameters-repo.js';
import { consoleRoot, registerConsole } from '../control/console.js';
import { Operations } from '../services/operations.js';
import { platformDefaults, type PlatformDefaults } from '../host/defaults.js';
import { SystemKeyRoot, enableFips, serverKeyAad } from '../crypto/index.js';
import { KeysRepo } from '../catalog/keys-repo.js';
import type { ServerRecord } from '../catalog/servers-repo.js';
import { DEFAULT_KEY_CHECK_INTERVAL_MS, KeyService } from '../services/key-service.js';
import { SYSTEM_PKCS11_CONFIG, loadPkcs11Modules } from '../crypto/pkcs11-config.js';
import { EncryptedVolume, fileVolumeRecords } from '../storage/encrypted-volume.js';
import { chooseBackend, type BackendName, type VolumeBackend, type VolumeSpec } from '../storage/volumes/index.js';
import { DEFAULT_BACKUP_INTERVAL_MS, rewrapBackupKeys, type BackupScheduler } from '../storage/backup/index.js';
import { DEFAULT_BACKUP_RETENTION_DAYS, scheduleBackups } from '../services/backup-schedule.js';

const GiB = 1024 ** 3;
import { DirectoryRepository } from '../storage/backup/index.js';

/** The six with defaults (dataDir, domain, gatewayPort, gatewayHosts, apiPort, apiHost) are
 * declared in defaults.ts, which the CLI reads without loading the platform. */
export interface PlatformOptions extends PlatformDefaults {
  readonly catalogUrl?: string;
  readonly logLevel?: string;
  /** The operator's own gateway certificate and key (PEM files) instead of one from the platform CA. */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  /** `gateway`: a second gateway on this host, sharing the data dir's catalog and servers
   * (started by `pgwarden gateway`); it runs no catalog, no servers and no control routes. */
  readonly mode?: 'platform' | 'gateway';
  /** A listener for connections through load balancers (PROXY protocol required, only from
   * these CIDRs): private endpoints identify themselves with Azure LinkID or AWS VPCE TLVs. */
  readonly privateLink?: { readonly hosts: readonly string[]; readonly port: number; readonly loadBalancers: readonly string[] };
  /** strict: every audit record is on disk before the session goes on; batched: written at once, synced every 200 ms. */
  readonly auditDurability?: 'strict' | 'batched';
  /** failClosed (default): new connections are refused while the audit log cannot be written. */
  readonly auditFailurePolicy?: AuditFailurePolicy;
  /** Gateway bounds: handshake and auth timeouts, sessions per server, startup packet size. */
  readonly gatewayLimits?: Partial<GatewayLimits>;
  /** Threat protection: the SMTP server alerts are e-mailed through, the operator's lists of
   * suspicious addresses (one address or CIDR per line; reloaded when they change), and the
   * country/network database (on by default; `false` turns the location detectors off). */
  readonly threat?: ThreatOptions;
  /** The backup repository (default `<data dir>/backups`). */
  readonly backupDir?: string;
  /** Storage encryption backend for new volumes: fscrypt when it works here, else gocryptfs. */
  readonly volumeBackend?: BackendName | 'auto';
  /** Size of each new server volume (a sparse image with fscrypt), default 16 GiB. */
  readonly volumeSizeBytes?: number;
  /** Full backups of every Ready server at this interval (default daily; 0 turns the schedule off). */
  readonly backupIntervalMs?: number;
  /** How often the schedule looks for due backups (default 60 s). */
  readonly backupScheduleTickMs?: number;
  /** Backups and WAL older than this are deleted after each scheduled backup (default 7). */
  readonly backupRetentionDays?: number;
  /** How often customer-managed keys are checked (default 30 s). */
  readonly keyCheckIntervalMs?: number;
  /** Refuse to start unless OpenSSL's FIPS provider is active (crypto.setFips(true)). */
  readonly fips?: boolean;
  /** PKCS#11 modules customer keys may use, NAME → PATH (`up --pkcs11-module NAME=PATH`), besides
   * those in the root-owned /etc/pgwarden/pkcs11-modules.json and <data dir>/pkcs11-modules.json. */
  readonly pkcs11Modules?: Readonly<Record<string, string>>;
}

export interface ThreatOptions {
  readonly smtp?: SmtpSettings;
  readonly ipLists?: readonly string[];
  readonly geoIp?: boolean;
}

export const defaultOptions: PlatformOptions = platformDefaults;

export interface ClientConfig {
  apiUrl: string;
  token: string;
  caFile: string;
}

export class Platform {
  readonly paths: PlatformPaths;
  readonly bus = new EventBus();
  readonly metrics: Registry = createMetrics();
  /** The OS users PostgreSQL runs as: one per managed server, one for the catalog. */
  accounts!: PlatformAccounts;
  ca!: PlatformCa;
  db!: pg.Pool;
  servers!: ManagedServers;
  serverService!: ServerService;
  configurations!: ConfigurationService;
  snapshots!: SnapshotStore;
  api!: FastifyInstance;
  gateway!: Gateway;
  certificates!: GatewayCertificates;
  readonly log: Logger;
  private catalogCluster: Cluster | null = null;
  private privateEndpoints!: PrivateEndpointsRepo;
  networkService!: NetworkService;
  principalKeys!: PrincipalKeys;
  private readonly tokenVerifiers = new TokenVerifiers();
  private feed!: ChangeFeed;
  audit!: AuditLog;
  threat!: ThreatEngine;
  readonly operations = new Operations();
  pgaudit: PgAuditIngest | null = null;
  /** The audit log cannot write since then (see auditFailed). */
  private auditFailure: { since: string; reason: string; rejected: number } | null = null;
  private readonly appliedAudit = new Map<number, string>();
  private releaseLock: (() => void) | null = null;
  private kekRoot!: SystemKeyRoot;
  keys!: KeyService;
  private backupSchedule: BackupScheduler | null = null;
  private volumeBackend!: () => Promise<VolumeBackend>;
  private catalogVolume: EncryptedVolume | null = null;
  private auditVolume: EncryptedVolume | null = null;
  private hostId!: string;

  constructor(readonly options: PlatformOptions) {
    this.paths = platformPaths(options.dataDir);
    this.log = pino({ name: 'pgwarden', level: options.logLevel ?? 'warn' }, pino.destination(2));
  }

  async start(): Promise<void> {
    const p = this.paths;
    // FIPS first: a platform that cannot honour --fips creates nothing.
    if (this.options.fips) enableFips();
    mkdirSync(p.root, { recursive: true, mode: 0o711 });
    chmodSync(p.root, 0o711); // the service account must traverse it to reach its own dirs
    if (!this.gatewayOnly) this.releaseLock = acquireLock(p.lockFile, p.root);
    try {
      await this.startParts();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private async startParts(): Promise<void> {
    const p = this.paths;
    const pgbin = findPgBinaries();
    // The PKCS#11 modules customer keys may load, checked before anything starts.
    const pkcs11Modules = loadPkcs11Modules({ flags: this.options.pkcs11Modules, files: [SYSTEM_PKCS11_CONFIG, path.join(p.root, 'pkcs11-modules.json')] });
    mkdirSync(p.runDir, { recursive: true, mode: 0o711 });
    mkdirSync(p.serversDir, { recursive: true, mode: 0o711 });
    mkdirSync(p.secretsDir, { recursive: true, mode: 0o700 });
    this.hostId = this.loadHostId();
    // One OS user per managed server and one for the catalog (named after this installation).
    this.accounts = new PlatformAccounts({ root: p.root, hostId: this.hostId });
    this.accounts.assertReachable(p.root);
    if (!this.gatewayOnly) {
      const swept = await sweepOrphanAccounts().catch((err: Error) => (this.log.error({ err }, 'removing OS users of removed platforms'), []));
      if (swept.length) this.log.info({ users: swept }, 'removed the OS users of platforms whose data dir is gone');
    }
    const embeddedCatalog = !this.gatewayOnly && !this.options.catalogUrl;
    const catalogAccount: OsAccount | null = embeddedCatalog ? await this.accounts.catalog() : null;
    // Encryption at rest: the root key (0600, only the platform reads it) derives each server's
    // system-managed KEK; the catalog and the audit store live on encrypted volumes of their own.
    this.kekRoot = await SystemKeyRoot.load(path.join(p.secretsDir, 'kek-root.key'));
    // Webhook secrets are sealed in the catalog; API token hashes are keyed (neither key is there).
    const webhookSecrets = new SecretSealer(this.kekRoot, 'webhook-secrets');
    const tokenHashKey = loadOrCreateKeyFile(path.join(p.secretsDir, 'api-token-hmac.key'));
    const backendChoice = this.options.volumeBackend ?? 'auto';
    let chosen: Promise<VolumeBackend> | null = null;
    this.volumeBackend = () => (chosen ??= chooseBackend(backendChoice));
    this.auditVolume = this.platformVolume('audit', p.auditVolume, { uid: 0, gid: 0 }, 16 * GiB);
    this.catalogVolume = this.platformVolume('catalog', p.catalogVolume, catalogAccount ?? { uid: 0, gid: 0 }, 4 * GiB);
    if (this.gatewayOnly) {
      if (!(await this.auditVolume.isOpen())) throw new Error(`The platform in ${p.root} is not running (its encrypted audit volume is locked): start it with 'pgwarden up' first.`);
    } else {
      await this.auditVolume.open(true);
      if (!this.options.catalogUrl) await this.catalogVolume.open(true);
    }
    this.audit = await AuditLog.open(
      {
        dir: this.gatewayOnly ? `${p.auditDir}-gateway-${this.options.gatewayPort}` : p.auditDir,
        keyFile: p.auditKey,
        witnessFile: this.gatewayOnly ? `${p.auditWitness}.gateway-${this.options.gatewayPort}` : p.auditWitness,
        durability: this.options.auditDurability ?? 'batched',
        policy: this.options.auditFailurePolicy ?? 'failClosed',
        log: this.log,
        onFailure: (err) => this.auditFailed(err),
        onRecovered: () => this.auditRecovered(),
      },
      this.bus,
    );
    this.ca = await loadOrCreateCa(p);

    // Catalog: embedded by default, or the PostgreSQL given by URL.
    let connection: pg.PoolConfig;
    if (this.options.catalogUrl) {
      connection = { connectionString: this.options.catalogUrl };
    } else if (this.gatewayOnly) {
      connection = { ...embeddedCatalogConnection(p) };
    } else {
      const embedded = await startEmbeddedCatalog(p, catalogAccount!);
      this.catalogCluster = embedded.cluster;
      connection = { ...embedded.connection };
    }
    this.db = new pg.Pool({ ...connection, max: 10, application_name: 'pgwarden' });
    this.db.on('error', () => undefined); // a dropped idle connection is not fatal: the next query reconnects
    if (!this.gatewayOnly) {
      const client = await this.db.connect();
      try {
        await migrate(client, { tokenHashKey, sealWebhookSecret: (secret, server, url) => webhookSecrets.seal(secret, webhookSecretAad(server, url)) });
      } finally {
        client.release();
      }
    }
    this.privateEndpoints = new PrivateEndpointsRepo(this.db);
    this.principalKeys = new PrincipalKeys(Buffer.from(loadOrCreateSecret(path.join(p.secretsDir, 'principal-root.secret')), 'base64url'));
    this.networkService = new NetworkService(this.db);
    this.feed = new ChangeFeed(connection);
    await this.feed.start();
    this.snapshots = new SnapshotStore(this.db, this.feed);
    await this.snapshots.load();
    catalogGauges(this.metrics, () => ({
      connected: this.feed.connected,
      ageSeconds: (Date.now() - this.snapshots.snapshot.loadedAt.getTime()) / 1000,
    }));

    // Managed servers back in the state they were in.
    const repo = new ServersRepo(this.db);
    // Backups: encrypted with per-backup keys wrapped by each server's KEK (system-managed,
    // derived from the platform root key) into the backup repository.
    const backupDir = this.options.backupDir ?? path.join(p.root, 'backups');
    mkdirSync(backupDir, { recursive: true, mode: 0o700 });
    const backupRepo = new DirectoryRepository(backupDir);
    const keysRepo = new KeysRepo(this.db);
    this.keys = new KeyService({
      root: this.kekRoot,
      keys: keysRepo,
      servers: repo,
      paths: p,
      hostId: this.hostId,
      checkIntervalMs: this.options.keyCheckIntervalMs ?? DEFAULT_KEY_CHECK_INTERVAL_MS,
      pkcs11Modules,
      lock: async (id) => {
        // This process's gateway refuses the server (its new state) before it goes down, so no
        // client meets a server that is shutting down (57P03) instead of the Inaccessible error.
        await this.snapshots.requestReload();
        await this.servers.stop(id);
        await this.servers.closeVolume(id);
      },
      unlock: (id) => this.servers.start(id),
      volumeOpen: (id) => this.servers.volumeIsOpen(id),
      rewrapBackups: (id, from, to) => rewrapBackupKeys(backupRepo, String(id), from, to),
      onInaccessible: (server, reason) => this.keyLost(server, reason),
      onError: (err, what) => this.log.error({ err }, what),
    });
    const volumeSize = this.options.volumeSizeBytes ?? 16 * GiB;
    this.servers = new ManagedServers(
      p,
      this.accounts,
      (id, owner) => new EncryptedVolume(this.serverVolumeSpec(id, volumeSize, owner), this.keys.volumeKeying(id), this.volumeBackend),
      { repo: backupRepo, kek: (id) => this.keys.backupKek(id) },
    );
    this.watchServers();
    this.serverService = new ServerService(repo, this.servers, this.hostId);
    // Server parameters: in the engine before any server starts; a restore copies its source's.
    this.configurations = new ConfigurationService(repo, new ServerParametersRepo(this.db), this.servers, this.hostId);
    if (!this.gatewayOnly) await this.configurations.loadAll();
    this.serverService.copyOnRestore = (from, to) => this.configurations.copyForRestore(from, to);
    await this.applyAuditSettings();
    if (!this.gatewayOnly) {
      // A customer key the HSM no longer gives leaves its server Inaccessible, not started.
      const locked = await this.keys.checkBeforeStart();
      await this.serverService.resume(
        (s, err) => this.bus.publish({ type: 'server.restart_failed', time: now(), server: s.name, details: { error: err.message } }),
        locked,
      );
      this.keys.start();
      const interval = this.options.backupIntervalMs ?? DEFAULT_BACKUP_INTERVAL_MS;
      if (interval > 0) {
        this.backupSchedule = scheduleBackups(
          {
            intervalMs: interval,
            retentionDays: this.options.backupRetentionDays ?? DEFAULT_BACKUP_RETENTION_DAYS,
            ...(this.options.backupScheduleTickMs ? { tickMs: this.options.backupScheduleTickMs } : {}),
          },
          { servers: repo, service: this.serverService, repo: backupRepo, hostId: this.hostId, onError: (err, server) => this.log.error({ err, server }, 'scheduled backup') },
        );
      }
    }

    // Threat protection: detectors over the bus, alerts in the catalog, the gateway's throttle.
    const threatRepo = new ThreatRepo(this.db);
    this.threat = await startThreatEngine({
      bus: this.bus,
      repo: threatRepo,
      log: this.log,
      policies: () => this.snapshots.snapshot.threat,
      serverId: (name) => this.snapshots.snapshot.servers.get(name)?.id,
      options: this.options.threat ?? {},
      consoleUrl: () => this.apiUrl,
      openWebhookSecret: (stored, server, url) => webhookSecrets.open(stored, webhookSecretAad(server, url)),
    });
    this.snapshots.on('updated', (snap) => {
      for (const name of snap.servers.keys()) this.threat.policyChanged(name, snap.threat.get(name));
    });

    // Control API (a gateway-only process serves health and metrics), and the Owner token for
    // the CLI on first start.
    const tokens = new TokensRepo(this.db, tokenHashKey);
    const ownerToken = this.gatewayOnly ? null : await this.ownerToken(tokens);
    const apiTls = await this.apiCertificate();
    this.api = await buildApi({ tls: apiTls, tokens, bus: this.bus, logLevel: this.options.logLevel });
    if (!this.gatewayOnly) {
      serverRoutes(this.api, this.serverService, this.options.domain, String(pgbin.majorVersion));
      networkRoutes(this.api, this.networkService);
      auditSettingsRoutes(this.api, repo, new AuditSettingsRepo(this.db));
      identityRoutes(this.api, new IdentityService(repo, new IdentityRepo(this.db), this.servers, this.principalKeys));
      threatRoutes(this.api, repo, threatRepo, this.threat, (secret, server, url) => webhookSecrets.seal(secret, webhookSecretAad(server, url)));
      backupRoutes(this.api, this.serverService, this.operations);
      keyRoutes(this.api, this.serverService, this.keys);
      configurationRoutes(this.api, this.configurations);
      registerConsole(this.api, { root: consoleRoot() });
    }
    auditLogRoutes(this.api, { dir: this.audit.dir, publicKeyPem: () => this.audit.publicKeyPem });
    platformRoutes(this.api, {
      tokens,
      caPem: () => this.ca.certPem,
      metrics: this.metrics,
      health: () => this.health(),
      rotateCertificate: async () => {
        await this.reloadCertificate();
        const cert = new X509Certificate(this.certificates.current.pem);
        return { fingerprint256: cert.fingerprint256, validTo: new Date(cert.validTo).toISOString() };
      },
    });
    await this.api.listen({ port: this.options.apiPort, host: this.options.apiHost });

    // Gateway: the only way in.
    this.certificates = await GatewayCertificates.load({
      paths: p,
      ca: this.ca,
      domain: this.options.domain,
      serverNames: [...this.snapshots.snapshot.servers.keys()],
      certFile: this.options.tlsCertFile,
      keyFile: this.options.tlsKeyFile,
      persist: !this.gatewayOnly, // one writer of the certificate files: the platform's own process
    });
    this.gateway = new Gateway({
      listeners: this.listenerSpecs(),
      domain: this.options.domain,
      limits: this.options.gatewayLimits,
      bus: this.bus,
      log: this.log,
      metrics: this.metrics,
      certificates: this.certificates,
      verifierSource: this.servers,
      mockSecret: Buffer.from(loadOrCreateSecret(path.join(p.secretsDir, 'scram-mock.secret')), 'base64url'),
      snapshot: () => this.snapshots.snapshot,
      network: () => this.snapshots.snapshot.network,
      registerPendingEndpoint: (server, endpoint) => {
        this.privateEndpoints.registerPending(server, endpoint.id, endpoint.kind).catch((err: Error) =>
          this.log.error({ err, server }, 'could not register a pending private endpoint'),
        );
      },
      socketDir: (id) => this.servers.socketDir(id),
      verifyToken: (token, admin) => this.tokenVerifiers.verify(token, admin),
      principalKeys: (id, role) => this.principalKeys.keys(id, role),
      audit: this.audit,
      threat: this.threat,
    });
    await this.gateway.listen();
    await this.gateway.syncVirtualNetworks(this.snapshots.snapshot.network);
    // Networks and VNet rules say whether this gateway serves them; listen addresses it cannot
    // serve are refused before they are written.
    this.networkService.virtualNetworks.useListeners(this.gateway.vnetListeners);
    this.snapshots.on('updated', (snap) => {
      // A server created or renamed: its host name into the certificate (same key, no session dropped).
      this.certificates.follow(snap.servers.keys()).catch((err: Error) => this.log.error({ err }, 'gateway certificate could not be reissued for the servers'));
      this.gateway.enforcePublicAccess(snap);
      void this.gateway.syncVirtualNetworks(snap.network);
      void this.applyAuditSettings();
    });
    if (!this.gatewayOnly) {
      this.pgaudit = new PgAuditIngest({
        stateFile: path.join(p.root, 'pgaudit-offsets.json'),
        servers: () => [...this.snapshots.snapshot.servers.values()].filter((s) => s.hostId === this.hostId),
        logDir: (id) => this.servers.logDir(id),
        sessions: this.gateway.context.sessionIndex,
        bus: this.bus,
        nestedOnly: nestedAuditOnly(findPgBinaries()),
      });
      this.pgaudit.start();
      // The store is shared by every server: it keeps records as long as the longest retention asks.
      this.audit.scheduleRetention(() => {
        const days = [...this.snapshots.snapshot.audit.values()].map((a) => a.retentionDays);
        return days.length ? Math.max(...days) : 90;
      }, this.bus);
    }
    if (ownerToken) {
      const cfg: ClientConfig = { apiUrl: this.apiUrl, token: ownerToken, caFile: p.caCert };
      writeSecretFile(p.clientConfig, `${JSON.stringify(cfg, null, 2)}\n`);
    }
    this.bus.publish({ type: 'platform.started', time: now(), details: { dataDir: p.root, apiUrl: this.apiUrl } });
  }

  /** Turns a server's threat protection on with the default detectors (the demo server's). */
  async enableThreatProtection(server: string): Promise<void> {
    const s = this.snapshots.snapshot.servers.get(server) ?? (await new ServersRepo(this.db).get(server));
    if (!s) throw new Error(`server ${server} not found`);
    const repo = new ThreatRepo(this.db);
    const p = await repo.policy(s.id);
    await repo.putPolicy(s.id, { ...p, state: 'Enabled', enabledAt: p.enabledAt ?? new Date().toISOString() });
  }

  get gatewayOnly(): boolean {
    return this.options.mode === 'gateway';
  }

  get apiUrl(): string {
    const bound = this.options.apiHost;
    const host = bound === '0.0.0.0' ? '127.0.0.1' : bound === '::' ? '::1' : bound;
    const address = this.api?.server.address();
    const port = address && typeof address === 'object' ? address.port : this.options.apiPort;
    return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  health(): HealthReport {
    const failStatic = this.snapshots.stale;
    const list = [...this.snapshots.snapshot.servers.values()];
    return {
      status: failStatic ? 'degraded' : 'ok',
      catalog: {
        connected: this.feed.connected,
        snapshotAgeSeconds: Math.round((Date.now() - this.snapshots.snapshot.loadedAt.getTime()) / 100) / 10,
        failStatic,
      },
      servers: { total: list.length, running: list.filter((s) => this.servers.isRunning(s.id)).length },
    };
  }

  private watchServers(): void {
    const nameOf = (id: number) => [...this.snapshots.snapshot.servers.values()].find((s) => s.id === id)?.name ?? String(id);
    this.servers.on('crashed', (id, info) =>
      this.bus.publish({ type: 'server.crashed', time: now(), server: nameOf(id), details: { ...info } }),
    );
    this.servers.on('restarted', (id) => this.bus.publish({ type: 'server.restarted', time: now(), server: nameOf(id) }));
    this.servers.on('dataRolesRevoked', (id, revoked) =>
      this.bus.publish({ type: 'server.data_roles_revoked', time: now(), server: nameOf(id), details: { revoked } }),
    );
    this.servers.on('restartFailed', (id, err) =>
      this.bus.publish({ type: 'server.restart_failed', time: now(), server: nameOf(id), details: { error: err.message } }),
    );
  }

  private loadHostId(): string {
    const file = path.join(this.paths.root, 'host-id');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    const id = randomBytes(8).toString('hex');
    writeFileSync(file, `${id}\n`, { mode: 0o644 });
    return id;
  }

  private async apiCertificate(): Promise<{ cert: string; key: string }> {
    const p = this.paths;
    if (existsSync(p.apiCert) && existsSync(p.apiKey)) {
      return { cert: readFileSync(p.apiCert, 'utf8'), key: readFileSync(p.apiKey, 'utf8') };
    }
    const leaf = await issueServerCertificate(this.ca, {
      commonName: 'pgwarden API',
      dnsNames: ['localhost', `api.${this.options.domain}`],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    writeFileSync(p.apiCert, leaf.certPem, { mode: 0o644 });
    writeSecretFile(p.apiKey, leaf.keyPem);
    return { cert: leaf.certPem, key: leaf.keyPem };
  }

  /** The Owner token the CLI uses: kept while valid, created on first start. */
  private async ownerToken(tokens: TokensRepo): Promise<string> {
    const file = this.paths.clientConfig;
    if (existsSync(file)) {
      const cfg = JSON.parse(readFileSync(file, 'utf8')) as ClientConfig;
      if (await tokens.authenticate(cfg.token)) return cfg.token;
    }
    return (await tokens.create('Owner', 'owner (created by up)', null)).token;
  }

  private listenerSpecs(): ListenerSpec[] {
    const o = this.options;
    const specs: ListenerSpec[] = o.gatewayHosts.map((host) => ({ kind: 'public' as const, host, port: o.gatewayPort }));
    if (o.privateLink) {
      const proxy = parseTrustedCidrs(o.privateLink.loadBalancers);
      for (const host of o.privateLink.hosts) specs.push({ kind: 'private-link', host, port: o.privateLink.port, proxy });
    }
    return specs;
  }

  /** Brings every server's pgAudit configuration in line with its audit settings. */
  private async applyAuditSettings(): Promise<void> {
    if (this.gatewayOnly) return;
    const snap = this.snapshots.snapshot;
    for (const server of snap.servers.values()) {
      if (server.hostId !== this.hostId) continue;
      const settings = snap.audit.get(server.name);
      if (!settings) continue;
      const key = JSON.stringify(settings);
      if (this.appliedAudit.get(server.id) === key) continue;
      this.appliedAudit.set(server.id, key);
      await this.servers.applyAuditSettings(server.id, settings).catch((err: Error) =>
        this.log.error({ err, server: server.name }, 'could not apply audit settings'),
      );
    }
  }

  /** Loads the operator's certificate files again, or issues a fresh one from the platform CA.
   * New handshakes use it; open sessions keep theirs. */
  async reloadCertificate(): Promise<void> {
    const o = this.options;
    if (o.tlsCertFile && o.tlsKeyFile) {
      this.certificates.replace(readFileSync(o.tlsCertFile, 'utf8'), readFileSync(o.tlsKeyFile, 'utf8'));
      return;
    }
    // A new key and certificate; written by the platform's own process only (one writer).
    await this.certificates.rotate(this.snapshots.snapshot.servers.keys());
  }

  private serverVolumeSpec(id: number, sizeBytes: number, owner: { uid: number; gid: number }): VolumeSpec {
    return { id: `server-${id}`, stateDir: this.paths.volumesDir, mountPoint: this.paths.serverVolume(id), sizeBytes, owner };
  }

  /** One of the platform's own volumes; its key file is wrapped by the root key's KEK. */
  private platformVolume(name: string, mountPoint: string, owner: { uid: number; gid: number }, sizeBytes: number): EncryptedVolume {
    return new EncryptedVolume(
      { id: `platform-${name}`, stateDir: this.paths.volumesDir, mountPoint, sizeBytes, owner },
      {
        records: fileVolumeRecords(path.join(this.paths.secretsDir, `volume-${name}.json`)),
        kek: async () => this.kekRoot.kek(`platform-${name}`),
        aad: serverKeyAad(`platform-${name}`, 'volume'),
      },
      this.volumeBackend,
    );
  }

  /** The audit log stopped recording: a High alert on every server, whatever the threat policy. */
  private auditFailed(err: Error): void {
    const policy = this.options.auditFailurePolicy ?? 'failClosed';
    this.auditFailure = { since: now(), reason: err.message, rejected: this.audit?.store.stats().rejected ?? 0 };
    const effect = policy === 'failOpen'
      ? 'The platform keeps serving (failOpen), but events are not being recorded.'
      : 'New connections are refused (failClosed) until it can write again.';
    for (const server of this.snapshots?.snapshot.servers.keys() ?? []) {
      this.threat?.platformAlert({
        kind: 'auditLogFailure',
        server,
        incidentKey: 'audit-log',
        principal: null,
        sourceAddress: null,
        description: `The platform's audit log cannot be written: ${err.message}. ${effect}`,
        evidence: { reason: err.message, policy, auditDir: this.paths.auditDir },
        count: 1,
        timeMs: Date.now(),
      });
    }
  }

  /** The audit log writes again: the gap goes on record (when, why, how many events were lost). */
  private auditRecovered(): void {
    const failure = this.auditFailure;
    this.auditFailure = null;
    if (!failure) return;
    this.bus.publish({
      type: 'audit.interrupted',
      time: now(),
      details: {
        from: failure.since,
        to: now(),
        reason: failure.reason,
        policy: this.options.auditFailurePolicy ?? 'failClosed',
        eventsLost: this.audit.store.stats().rejected - failure.rejected,
      },
    });
  }

  /** A customer key was lost: the server is stopped and locked; say so everywhere. */
  private keyLost(server: ServerRecord, reason: string): void {
    this.bus.publish({ type: 'server.inaccessible', time: now(), server: server.name, details: { reason } });
    this.threat?.platformAlert({
      kind: 'keyUnavailable',
      server: server.name,
      incidentKey: 'kek',
      principal: null,
      sourceAddress: null,
      description: `The customer-managed key of server ${server.name} cannot be used: ${reason} The server was stopped and its volume locked; clients get SQLSTATE 08004.`,
      evidence: { reason },
      count: 1,
      timeMs: Date.now(),
    });
  }

  async stop(): Promise<void> {
    this.bus.publish({ type: 'platform.stopped', time: now() });
    // Every step runs even when one before it failed: a half-stopped platform would leave
    // PostgreSQL processes running and volumes unlocked.
    const step = async (what: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        this.log.error({ err }, `stopping: ${what}`);
      }
    };
    await step('api', () => this.api?.close());
    await step('gateway', () => this.gateway?.close());
    await step('threat', () => this.threat?.stop());
    await step('keys', () => this.keys?.stop());
    await step('backup schedule', () => this.backupSchedule?.stop());
    await step('feed', () => this.feed?.stop());
    if (this.gatewayOnly) await step('pools', () => this.servers?.closePools());
    else await step('servers', () => this.servers?.stopAll());
    await step('pgaudit', () => this.pgaudit?.stop()); // the servers' last lines
    await step('catalog pool', () => this.db?.end());
    await step('catalog', () => this.catalogCluster?.stop());
    await step('audit', () => this.audit?.close());
    if (!this.gatewayOnly) {
      if (this.catalogCluster) await step('catalog volume', () => this.catalogVolume?.close());
      if (this.audit) await step('audit volume', () => this.auditVolume?.close());
    }
    this.releaseLock?.();
    this.releaseLock = null;
  }

}
