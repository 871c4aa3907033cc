// One platform on this host (`pgwarden up`): catalog, managed servers, control API and gateway,
// composed from the parts in this folder. A gateway-only process is the other composition
// (gateway-process.ts). stop() stops the parts in the order listed there, servers last.
import type pg from 'pg';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { platformPaths, type PlatformPaths } from '../host/paths.js';
import { loadOrCreateCa, type PlatformCa } from '../host/ca.js';
import type { PlatformAccounts } from '../host/os-accounts.js';
import { EventBus, now } from '../events/bus.js';
import type { PrincipalKeys } from '../auth/principal-keys.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { PgAuditIngest } from '../audit/pgaudit-ingest.js';
import type { ThreatEngine } from '../threat/engine.js';
import type { BackupScheduler } from '../storage/backup/index.js';
import type { ManagedServers } from '../engine/managed-servers.js';
import type { SnapshotStore } from '../catalog/snapshot.js';
import { TokensRepo } from '../catalog/tokens-repo.js';
import type { Gateway } from '../gateway/gateway.js';
import type { GatewayCertificates } from '../gateway/tls-certificates.js';
import { createMetrics, poolMetrics, type PlatformRegistry } from '../services/metrics.js';
import type { PoolStatsSource } from '../gateway/pool/types.js';
import { Operations } from '../services/operations.js';
import { NetworkService } from '../services/network-service.js';
import type { ServerService } from '../services/server-service.js';
import type { ConfigurationService } from '../services/configuration-service.js';
import type { KeyService } from '../services/key-service.js';
import { PlatformService, type HealthReport } from '../services/platform-service.js';
import { AuditFailureAlerts } from '../services/platform-alerts.js';
import { AuditSettingsSync } from '../services/audit-settings-sync.js';
import type { PlatformOptions } from './options.js';
import { started, stopInOrder, type Part } from './parts.js';
import { lockDataDir, openHost, prepareDataDir, sweepOrphans } from './host.js';
import { openPlatformAudit, type PlatformAuditPart } from './audit-part.js';
import { GatewaysRepo } from '../catalog/gateways-repo.js';
import { followCatalog, startPlatformCatalog, type CatalogPart, type SnapshotPart } from './catalog-part.js';
import { buildServers, scheduleServerBackups, startPgAudit, startServers, type ServersPart } from './servers-part.js';
import { startThreat } from './threat-part.js';
import { apiUrl, ownerToken, startApi, writeClientConfig, type ApiPart } from './api-part.js';
import { controlPlaneRoutes } from './api-routes.js';
import { loadGatewayCertificates, startGateway, type GatewayPart } from './gateway-part.js';
import { GatewayWorkers } from './workers/worker-pool.js';
import { joinTier } from './tier/tier-part.js';
import type { GatewayTier } from './tier/gateway-tier.js';
import { mergePoolStats, shareLimits, shareOf } from './workers/share.js';
import { defaultLimits } from '../gateway/context.js';

export { defaultOptions, type ClientConfig, type PlatformOptions, type ThreatOptions } from './options.js';

export class Platform {
  readonly paths: PlatformPaths;
  readonly log: Logger;
  readonly bus = new EventBus();
  readonly metrics: PlatformRegistry = createMetrics();
  readonly operations = new Operations();
  /** The OS users PostgreSQL runs as: one per managed server, one for the catalog. */
  accounts!: PlatformAccounts;
  principalKeys!: PrincipalKeys;
  ca!: PlatformCa;
  networkService!: NetworkService;
  certificates!: GatewayCertificates;
  /** Health, the gateway certificate, the demo's threat protection. */
  service!: PlatformService;

  // The parts, as far as start() got; stop() stops these.
  private lock: Part | undefined;
  private auditPart: PlatformAuditPart | undefined;
  private catalog: CatalogPart | undefined;
  private snapshotPart: SnapshotPart | undefined;
  private serversPart: ServersPart | undefined;
  private backupSchedule: BackupScheduler | undefined;
  private threatEngine: ThreatEngine | undefined;
  private apiPart: ApiPart | undefined;
  private gatewayPart: GatewayPart | undefined;
  /** The gateway's other processes (`--gateway-workers N`, N > 1). */
  private workers: GatewayWorkers | undefined;
  /** Cancels and throttle blocks shared with each `pgwarden gateway` on this catalog (tier/). */
  private tier: GatewayTier | undefined;
  private pgauditIngest: PgAuditIngest | undefined;

  constructor(readonly options: PlatformOptions) {
    this.paths = platformPaths(options.dataDir);
    this.log = pino({ name: 'pgwarden', level: options.logLevel ?? 'warn' }, pino.destination(2));
  }

  // What tests, benchmarks and the demo reach (once started).
  get audit(): AuditLog {
    return started(this.auditPart, 'audit log').log;
  }
  get db(): pg.Pool {
    return started(this.catalog, 'catalog').db;
  }
  get snapshots(): SnapshotStore {
    return started(this.snapshotPart, 'catalog snapshot').snapshots;
  }
  get servers(): ManagedServers {
    return started(this.serversPart, 'servers').servers;
  }
  get serverService(): ServerService {
    return started(this.serversPart, 'servers').serverService;
  }
  get configurations(): ConfigurationService {
    return started(this.serversPart, 'servers').configurations;
  }
  get keys(): KeyService {
    return started(this.serversPart, 'servers').keys;
  }
  get threat(): ThreatEngine {
    return started(this.threatEngine, 'threat engine');
  }
  get api(): FastifyInstance {
    return started(this.apiPart, 'API').api;
  }
  get gateway(): Gateway {
    return started(this.gatewayPart, 'gateway').gateway;
  }
  /** The process ids of the gateway's other processes (`--gateway-workers N`). */
  get gatewayWorkerPids(): number[] {
    return this.workers?.pids ?? [];
  }
  get pgaudit(): PgAuditIngest | null {
    return this.pgauditIngest ?? null;
  }

  get apiUrl(): string {
    return apiUrl(this.options, this.apiPart?.api);
  }

  health(): HealthReport {
    return this.service.health();
  }

  /** Turns a server's threat protection on with the default detectors (the demo server's). */
  enableThreatProtection(server: string): Promise<void> {
    return this.service.enableThreatProtection(server);
  }

  /** Loads the operator's certificate files again, or issues a fresh one from the platform CA. */
  reloadCertificate(): Promise<void> {
    return this.service.reloadCertificate();
  }

  async start(): Promise<void> {
    prepareDataDir(this.options, this.paths);
    this.lock = lockDataDir(this.paths);
    try {
      await this.compose();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
  }

  private async compose(): Promise<void> {
    const { options: o, paths, bus, log, metrics } = this;
    const host = await openHost(o, paths);
    this.accounts = host.accounts;
    this.principalKeys = host.principalKeys;
    await sweepOrphans(log);
    const threat = () => this.threatEngine;
    const alerts = new AuditFailureAlerts({
      bus,
      threat,
      policy: o.auditFailurePolicy ?? 'failClosed',
      auditDir: () => this.auditPart?.log.dir,
      rejected: () => this.auditPart?.log.store.stats().rejected,
      servers: () => this.snapshotPart?.snapshots.snapshot.servers.keys() ?? [],
    });
    this.auditPart = await openPlatformAudit(o, host, { log, bus, alerts });
    this.ca = await loadOrCreateCa(paths);
    const catalog = await startPlatformCatalog(o, host);
    this.catalog = catalog;
    const { db } = catalog;
    this.networkService = new NetworkService(db);
    this.snapshotPart = await followCatalog(catalog, metrics, { bus, log });
    const { feed, snapshots } = this.snapshotPart;

    // The gateway starts after the API: the pools are read through it when asked, not now.
    const pools: PoolStatsSource = {
      poolStats: (server) => {
        const own = this.gatewayPart?.gateway.pools.poolStats(server) ?? [];
        return this.workers ? mergePoolStats([...own, ...this.workers.poolStats(server)]) : own;
      },
    };
    poolMetrics(metrics, () => snapshots.snapshot.servers.keys(), pools);
    const servers = buildServers(o, host, { db, snapshots, bus, log, threat, pools });
    this.serversPart = servers;
    const auditSync = new AuditSettingsSync({ snapshots, servers: servers.servers, hostId: host.hostId, log });
    await startServers(servers, auditSync, bus);
    this.backupSchedule = scheduleServerBackups(o, host, servers, log);

    const threatPart = await startThreat(o, host, { bus, log, db, snapshots, consoleUrl: () => this.apiUrl });
    this.threatEngine = threatPart.engine;
    const tier = await joinTier(catalog, host, {
      name: 'platform',
      throttle: threatPart.engine.throttle,
      bus,
      log,
      // From another gateway of the tier: this process's sessions, then its gateway processes'.
      cancelHere: async (pid, secret) => {
        if (await this.gatewayPart?.gateway.cancelHere(pid, secret)) return true;
        await this.workers?.cancelElsewhere(pid, secret);
        return false;
      },
    });
    this.tier = tier;

    // Gateways on other hosts (catalog registry): their audit streams join search and verify.
    this.auditPart.readRemoteGateways(new GatewaysRepo(db), this.ca.certPem);
    const tokens = new TokensRepo(db, host.tokenHashKey);
    const owner = await ownerToken(paths, tokens); // the CLI's, on first start
    const certificates = await loadGatewayCertificates(o, host, this.ca, snapshots, true);
    this.certificates = certificates;
    const service = new PlatformService({
      db,
      snapshots,
      feed,
      isRunning: (id) => servers.servers.isRunning(id),
      certificates,
      tlsCertFile: o.tlsCertFile,
      tlsKeyFile: o.tlsKeyFile,
    });
    this.service = service;
    this.apiPart = await startApi(o, { paths, ca: this.ca, tokens, bus }, (api) =>
      controlPlaneRoutes(api, {
        audit: this.audit,
        auditStreams: (caller) => started(this.auditPart, 'audit').streams(caller),
        tokens,
        ca: this.ca,
        metrics,
        service,
        domain: o.domain,
        pgMajorVersion: host.pgMajorVersion,
        db,
        servers,
        networkService: this.networkService,
        principalKeys: host.principalKeys,
        threat: threatPart.engine,
        threatRepo: threatPart.repo,
        webhookSecrets: host.webhookSecrets,
        operations: this.operations,
      }),
    );

    // The gateway: the only way in. With --gateway-workers N it runs in N processes: this one
    // opens the listeners and the others accept on them too (workers/worker-pool.ts).
    const count = Math.max(1, Math.floor(o.gatewayWorkers ?? 1));
    const workers =
      count > 1
        ? new GatewayWorkers({
            options: o,
            count,
            log,
            bus,
            audit: this.audit,
            blocks: () => threatPart.engine.throttle.list(null, Date.now()),
            addFinding: (f) => threatPart.engine.addFinding(f),
            sessionIndex: () => this.gateway.context.sessionIndex,
            // From a gateway process: this process's sessions, then the tier (and, when this
            // answers false, the other gateway processes).
            cancelHere: async (pid, secret) => {
              if (await this.gateway.cancelHere(pid, secret)) return true;
              await tier.cancelElsewhere(pid, secret);
              return false;
            },
            certificatePem: () => certificates.current.pem,
          })
        : undefined;
    this.workers = workers;
    this.gatewayPart = await startGateway(o, host, {
      bus,
      log,
      metrics,
      db,
      snapshots,
      certificates,
      principalKeys: host.principalKeys,
      maintenance: servers.servers.maintenance,
      audit: this.audit,
      threat: threatPart.engine,
      shared: {
        // None of this process's sessions: its gateway processes and the tier are asked.
        cancelElsewhere: async (pid: number, secret: Buffer) => {
          await Promise.all([workers?.cancelElsewhere(pid, secret), tier.cancelElsewhere(pid, secret)]);
        },
        ...(workers
          ? {
              limits: shareLimits({ ...defaultLimits, ...o.gatewayLimits }, 0, count),
              poolSizeShare: (size: number) => shareOf(size, 0, count),
              onListener: workers.onListener,
            }
          : {}),
      },
    });
    await workers?.start();
    if (workers) metrics.addProcesses(() => workers.metrics());
    // Networks and VNet rules say whether this gateway serves them; listen addresses it cannot
    // serve are refused before they are written.
    this.networkService.virtualNetworks.useListeners(this.gateway.vnetListeners);
    snapshots.on('updated', () => void auditSync.apply());
    this.pgauditIngest = startPgAudit(host, {
      servers: servers.servers,
      snapshots,
      sessions: this.gateway.context.sessionIndex,
      bus,
      audit: this.audit,
      gatewayProcesses: Math.max(1, Math.floor(o.gatewayWorkers ?? 1)),
    });
    writeClientConfig(paths, this.apiUrl, owner);
    bus.publish({ type: 'platform.started', time: now(), details: { dataDir: paths.root, apiUrl: this.apiUrl } });
  }

  async stop(): Promise<void> {
    this.bus.publish({ type: 'platform.stopped', time: now() });
    await stopInOrder(this.log, [
      ['api', this.apiPart],
      ['gateway processes', this.workers],
      ['gateway', this.gatewayPart],
      ['gateway tier', this.tier],
      ['threat', this.threatEngine],
      ['keys', this.serversPart?.keys],
      ['backup schedule', this.backupSchedule],
      ['feed', this.snapshotPart],
      ['servers', this.serversPart],
      ['pgaudit', this.pgauditIngest], // the servers' last lines
      ['catalog', this.catalog],
      ['audit', this.auditPart],
      ['lock', this.lock],
    ]);
  }
}
