// One more gateway process of `up --gateway-workers N`: the platform process forks it, shares its
// listening sockets with it (each connection goes to whichever process accepts it first) and is
// the one place for what must be one: the audit log, threat detection and alerts, the throttle's
// blocks, the pgAudit join. This process reads the catalog (its own snapshot and change feed),
// the servers' verifiers and the gateway certificate itself, and runs the whole connection
// pipeline; its events go to the platform process (event-forwarder.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { platformPaths } from '../../host/paths.js';
import { loadOrCreateCa } from '../../host/ca.js';
import { EventBus } from '../../events/bus.js';
import { MaintenanceConnections } from '../../engine/maintenance.js';
import { ThreatRepo } from '../../catalog/threat-repo.js';
import { ThreatEngine } from '../../threat/engine.js';
import { sqlInspectorFactory, threatSources } from '../../threat/start.js';
import { BlockMirror } from '../../threat/protection/block-mirror.js';
import type { ThreatGate } from '../../gateway/context.js';
import type { GatewayCertificates } from '../../gateway/tls-certificates.js';
import { Registry } from 'prom-client';
import type { PlatformOptions } from '../options.js';
import { stopInOrder, type Part } from '../parts.js';
import { openHost } from '../host.js';
import { connectGatewayCatalog, followCatalog, type CatalogPart, type SnapshotPart } from '../catalog-part.js';
import { loadGatewayCertificates, startGateway, type GatewayPart } from '../gateway-part.js';
import { EventForwarder, ForwardingSessionIndex } from './event-forwarder.js';
import { attachedFromCatalog } from '../attached-lookup.js';
import { PendingRequests } from './requests.js';
import { shareLimits, shareOf } from './share.js';
import type { FromWorker, ToWorker } from './messages.js';
import { defaultLimits } from '../../gateway/context.js';

const POOL_REPORT_MS = 1_000;
const CANCEL_WAIT_MS = 2_000;

export class GatewayWorker {
  readonly log: Logger;
  private readonly bus = new EventBus();
  private readonly blocks = new BlockMirror();
  private forwarder: EventForwarder | null = null;
  private catalog: CatalogPart | undefined;
  private snapshotPart: SnapshotPart | undefined;
  private maintenance: (Part & { connections: MaintenanceConnections }) | undefined;
  private watch: ThreatEngine | undefined;
  private gatewayPart: GatewayPart | undefined;
  private certificates: GatewayCertificates | undefined;
  private poolTimer: NodeJS.Timeout | null = null;
  private lastPools = '';
  private metrics: Registry | null = null;
  private readonly cancels = new PendingRequests<true>();

  constructor(
    private readonly options: PlatformOptions,
    private readonly index: number,
    private readonly count: number,
    private readonly send: (m: FromWorker) => void,
  ) {
    this.log = pino({ name: `pgwarden-gateway-${index}`, level: options.logLevel ?? 'warn' }, pino.destination(2));
  }

  async start(): Promise<number> {
    const o = this.options;
    const paths = platformPaths(o.dataDir);
    const { bus, log } = this;
    // Only the gateway's own metrics: the platform process adds them to its /metrics.
    const metrics = new Registry();
    this.metrics = metrics;
    const host = await openHost(o, paths);
    const forwarder = new EventForwarder(this.send, o.auditDurability === 'strict');
    this.forwarder = forwarder;
    bus.subscribe((e) => forwarder.event(e));
    this.catalog = connectGatewayCatalog(o, host);
    const { db } = this.catalog;
    this.snapshotPart = await followCatalog(this.catalog, new Registry());
    const { snapshots } = this.snapshotPart;
    const connections = new MaintenanceConnections(paths);
    // Attached servers through the platform process's relays on this host.
    connections.useAttached(attachedFromCatalog(host, snapshots, log));
    this.maintenance = { connections, stop: () => connections.closePools() };
    const ca = await loadOrCreateCa(paths);
    const certificates = await loadGatewayCertificates(o, host, ca, snapshots, false);
    this.certificates = certificates;

    // The SQL-injection watch runs here, on the statements this process relays; its findings
    // become alerts in the platform process. Learned shapes load from and persist to the catalog.
    const repo = new ThreatRepo(db);
    const watch = new ThreatEngine({
      bus,
      repo,
      log,
      policies: () => snapshots.snapshot.threat,
      serverId: (name) => snapshots.snapshot.servers.get(name)?.id,
      sources: await threatSources({ geoIp: false }),
      sqlInspector: sqlInspectorFactory(),
      learnedStore: repo,
      notifier: null,
      findingSink: (finding) => this.send({ type: 'finding', finding }),
    });
    await watch.start({ events: false });
    this.watch = watch;
    snapshots.on('updated', (snap) => {
      for (const name of snap.servers.keys()) watch.policyChanged(name, snap.threat.get(name));
    });
    const threat: ThreatGate = {
      blocked: (server, address, user) =>
        snapshots.snapshot.threat.get(server)?.autoProtection.state === 'Enabled' ? this.blocks.check(server, address, user, Date.now()) : null,
      sqlTap: (server, role, app, source) => watch.sqlTap(server, role, app, source),
    };

    const limits = shareLimits({ ...defaultLimits, ...o.gatewayLimits }, this.index, this.count);
    this.gatewayPart = await startGateway(o, host, {
      bus,
      log,
      metrics,
      db,
      snapshots,
      certificates,
      principalKeys: host.principalKeys,
      maintenance: connections,
      audit: forwarder,
      threat,
      listens: false,
      shared: {
        limits,
        poolSizeShare: (size) => shareOf(size, this.index, this.count),
        sessionIndex: new ForwardingSessionIndex(forwarder),
        cancelElsewhere: (processId, secretKey) => this.cancelElsewhere(processId, secretKey),
      },
    });
    const gateway = this.gatewayPart.gateway;
    this.poolTimer = setInterval(() => {
      const rows = [...snapshots.snapshot.servers.keys()].flatMap((s) => gateway.pools.poolStats(s));
      const text = JSON.stringify(rows);
      if (text === this.lastPools) return;
      this.lastPools = text;
      this.send({ type: 'pools', rows });
    }, POOL_REPORT_MS);
    this.poolTimer.unref();
    return gateway.port;
  }

  /** What the platform process says. */
  async handle(m: ToWorker, handle: unknown): Promise<void> {
    const gateway = this.gatewayPart?.gateway;
    switch (m.type) {
      case 'listen':
        if (gateway && handle) gateway.adopt(m.id, m.spec, handle as import('node:net').Server);
        return;
      case 'unlisten':
        gateway?.release(m.id);
        return;
      case 'blocks':
        this.blocks.replace(m.blocks);
        return;
      case 'audit-state':
        this.forwarder?.setAccepts(m.accepts);
        return;
      case 'ack':
        this.forwarder?.ack(m.seq);
        return;
      case 'cancel': {
        const found = gateway ? await gateway.cancelHere(m.processId, Buffer.from(m.secretKey)) : false;
        this.send({ type: 'cancel-done', req: m.req, found });
        return;
      }
      case 'cancel-done':
        this.cancels.answer(m.req, true);
        return;
      case 'certificate':
        this.reloadCertificate();
        return;
      case 'metrics':
        this.send({ type: 'metrics', req: m.req, metrics: this.metrics ? await this.metrics.getMetricsAsJSON() : [] });
        return;
      default:
        return;
    }
  }

  /** A CancelRequest for no session of this process: the platform process asks the others. */
  private async cancelElsewhere(processId: number, secretKey: Buffer): Promise<void> {
    const { req, answer } = this.cancels.open(CANCEL_WAIT_MS);
    this.send({ type: 'cancel', req, processId, secretKey });
    await answer;
  }

  /** The platform process rotated the certificate: the files it wrote (or the operator's). */
  private reloadCertificate(): void {
    const o = this.options;
    const paths = platformPaths(o.dataDir);
    try {
      const certFile = o.tlsCertFile && o.tlsKeyFile ? o.tlsCertFile : path.join(paths.caDir, 'gateway.crt');
      const keyFile = o.tlsCertFile && o.tlsKeyFile ? o.tlsKeyFile : path.join(paths.secretsDir, 'gateway.key');
      this.certificates?.replace(readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'));
    } catch (err) {
      this.log.error({ err }, 'the rotated gateway certificate could not be read: this process keeps the one it has');
    }
  }

  async stop(): Promise<void> {
    if (this.poolTimer) clearInterval(this.poolTimer);
    await stopInOrder(this.log, [
      ['gateway', this.gatewayPart],
      ['threat', this.watch],
      ['feed', this.snapshotPart],
      ['pools', this.maintenance],
      ['catalog pool', this.catalog],
    ]);
    this.forwarder?.flush();
  }
}
