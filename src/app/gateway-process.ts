// `pgwarden gateway`: one more gateway on a running platform's catalog (same host: same data
// dir; or --catalog-url, also from another host with a data dir of its own). It runs no catalog,
// no servers and no control routes: its API serves its own audit log, health, metrics and
// certificate rotation. It takes no data-dir lock and never writes the gateway certificate files
// (the platform's own process does). It registers in the catalog so the platform finds its stream.
import type { Registry } from 'prom-client';
import { pino, type Logger } from 'pino';
import { platformPaths, type PlatformPaths } from '../host/paths.js';
import { loadOrCreateCa } from '../host/ca.js';
import { EventBus, now } from '../events/bus.js';
import type { ThreatEngine } from '../threat/engine.js';
import { MaintenanceConnections } from '../engine/maintenance.js';
import { TokensRepo } from '../catalog/tokens-repo.js';
import type { Gateway } from '../gateway/gateway.js';
import { createMetrics, poolMetrics } from '../services/metrics.js';
import type { PoolStatsSource } from '../gateway/pool/types.js';
import { PlatformService } from '../services/platform-service.js';
import { AuditFailureAlerts } from '../services/platform-alerts.js';
import type { PlatformOptions } from './options.js';
import { started, stopInOrder, type Part } from './parts.js';
import { openHost, prepareDataDir } from './host.js';
import { isPlatformDataDir, openGatewayAudit, type AuditPart } from './audit-part.js';
import { followAttached, type AttachedPart } from './attached-part.js';
import { connectGatewayCatalog, followCatalog, type CatalogPart, type SnapshotPart } from './catalog-part.js';
import { startThreat } from './threat-part.js';
import { apiUrl, startApi, type ApiPart } from './api-part.js';
import { processRoutes } from './api-routes.js';
import { attachedFromCatalog } from './attached-lookup.js';
import { loadGatewayCertificates, startGateway, type GatewayPart } from './gateway-part.js';
import { joinTier } from './tier/tier-part.js';
import { GatewaysRepo } from '../catalog/gateways-repo.js';
import { registerGateway } from './gateway-registry-part.js';
import type { GatewayTier } from './tier/gateway-tier.js';

export class GatewayProcess {
  readonly paths: PlatformPaths;
  readonly log: Logger;
  readonly bus = new EventBus();
  readonly metrics: Registry = createMetrics();
  private service: PlatformService | undefined;

  // The parts, as far as start() got; stop() stops these.
  private auditPart: AuditPart | undefined;
  private catalog: CatalogPart | undefined;
  private snapshotPart: SnapshotPart | undefined;
  /** Role verifiers for SCRAM, read from the servers the platform runs. */
  private maintenance: (Part & { connections: MaintenanceConnections }) | undefined;
  private threatEngine: ThreatEngine | undefined;
  /** Cancels and throttle blocks shared with the platform's gateway and the other gateway processes. */
  private tier: GatewayTier | undefined;
  private apiPart: ApiPart | undefined;
  /** Its row in the catalog's gateway registry (where the platform finds its audit stream). */
  private registry: Part | undefined;
  private gatewayPart: GatewayPart | undefined;

  constructor(readonly options: PlatformOptions) {
    this.paths = platformPaths(options.dataDir);
    this.log = pino({ name: 'pgwarden', level: options.logLevel ?? 'warn' }, pino.destination(2));
  }

  get gateway(): Gateway {
    return started(this.gatewayPart, 'gateway').gateway;
  }

  get apiUrl(): string {
    return apiUrl(this.options, this.apiPart?.api);
  }

  /** Loads the operator's certificate files again, or issues a fresh one from the platform CA
   * (kept in memory: this process writes no certificate files). */
  async reloadCertificate(): Promise<void> {
    await this.service?.reloadCertificate();
  }

  async start(): Promise<void> {
    prepareDataDir(this.options, this.paths);
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
    const threat = () => this.threatEngine;
    const alerts = new AuditFailureAlerts({
      bus,
      threat,
      policy: o.auditFailurePolicy ?? 'failClosed',
      auditDir: () => this.auditPart?.log.dir,
      rejected: () => this.auditPart?.log.store.stats().rejected,
      servers: () => this.snapshotPart?.snapshots.snapshot.servers.keys() ?? [],
    });
    this.auditPart = await openGatewayAudit(o, host, { log, bus, alerts });
    const audit = this.auditPart.log;
    const ca = await loadOrCreateCa(paths);
    this.catalog = connectGatewayCatalog(o, host);
    const { db } = this.catalog;
    this.snapshotPart = await followCatalog(this.catalog, metrics, { bus, log });
    const { feed, snapshots } = this.snapshotPart;
    // Read when asked: the gateway starts after the API and the metrics are registered.
    const pools: PoolStatsSource = { poolStats: (server) => this.gatewayPart?.gateway.pools.poolStats(server) ?? [] };
    poolMetrics(metrics, () => snapshots.snapshot.servers.keys(), pools);
    const connections = new MaintenanceConnections(paths);
    // Attached servers: on the platform's host through its relays (their sockets are in its run
    // dir); on another host through relays of this process's own.
    let relays: AttachedPart | null = null;
    if (isPlatformDataDir(paths)) connections.useAttached(attachedFromCatalog(host, snapshots, log));
    else {
      relays = followAttached(host, { snapshots, maintenance: connections, bus, log });
      await relays.sync();
    }
    this.maintenance = {
      connections,
      stop: async () => {
        await relays?.stop();
        await connections.closePools();
      },
    };
    const { engine } = await startThreat(o, host, { bus, log, db, snapshots, consoleUrl: () => this.apiUrl });
    this.threatEngine = engine;
    this.tier = await joinTier(this.catalog, host, {
      name: this.auditPart.name,
      throttle: engine.throttle,
      bus,
      log,
      cancelHere: (pid, secret) => this.gatewayPart?.gateway.cancelHere(pid, secret) ?? Promise.resolve(false),
    });
    const tier = this.tier;
    const certificates = await loadGatewayCertificates(o, host, ca, snapshots, false);
    const service = new PlatformService({
      db,
      snapshots,
      feed,
      isRunning: () => false, // the platform's process runs the servers
      certificates,
      tlsCertFile: o.tlsCertFile,
      tlsKeyFile: o.tlsKeyFile,
    });
    this.service = service;
    const tokens = new TokensRepo(db, host.tokenHashKey);
    this.apiPart = await startApi(o, { paths, ca, tokens, bus }, (api) =>
      processRoutes(api, { audit, tokens, ca, metrics, service, auditStreams: () => started(this.auditPart, 'audit').streams() }),
    );
    if (this.auditPart.name !== `gw-${o.gatewayPort}` && /^https:\/\/(127\.|\[::1\])/.test(this.apiUrl))
      log.warn(
        { apiUrl: this.apiUrl },
        'this gateway keeps its own audit stream but registers a loopback API URL: the platform on another host cannot reach it (give --api-host)',
      );
    this.registry = await registerGateway(
      new GatewaysRepo(db),
      { name: this.auditPart.name, apiUrl: this.apiUrl, auditPublicKey: audit.publicKeyPem, hostId: host.hostId },
      log,
    );
    this.gatewayPart = await startGateway(o, host, {
      bus,
      log,
      metrics,
      db,
      snapshots,
      certificates,
      principalKeys: host.principalKeys,
      maintenance: connections,
      audit,
      threat: engine,
      shared: { cancelElsewhere: (pid, secret) => tier.cancelElsewhere(pid, secret) },
    });
    bus.publish({ type: 'platform.started', time: now(), details: { dataDir: paths.root, apiUrl: this.apiUrl } });
  }

  async stop(): Promise<void> {
    this.bus.publish({ type: 'platform.stopped', time: now() });
    await stopInOrder(this.log, [
      ['gateway registry', this.registry],
      ['api', this.apiPart],
      ['gateway', this.gatewayPart],
      ['gateway tier', this.tier],
      ['threat', this.threatEngine],
      ['feed', this.snapshotPart],
      ['pools', this.maintenance],
      ['catalog pool', this.catalog],
      ['audit', this.auditPart],
    ]);
  }
}
