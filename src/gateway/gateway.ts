// The gateway: listeners (public addresses, one per virtual network, private-link behind load
// balancers), each connection handed to the pipeline in connection.ts.
import net from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { handleConnection } from './connection.js';
import { CancelKeys } from './cancel-keys.js';
import { SessionLimiter } from './session-limiter.js';
import { SessionIndex } from './session-index.js';
import type { ThreatGate } from './context.js';
import { StatementAuditPolicies } from '../audit/statement-audit.js';
import { VerifierCache, type VerifierSource } from './verifier-cache.js';
import { defaultLimits, type ActiveSession, type GatewayContext, type GatewayLimits, type ListenerSpec } from './context.js';
import type { NetworkView, PrivateEndpointIdentity } from './network-stage.js';
import type { GatewayCertificates } from './tls-certificates.js';
import type { TokenVerifier } from './token-login.js';
import type { AuditGate } from './context.js';
import type { ScramKeys } from '../auth/scram/keys.js';
import type { EventBus } from '../events/bus.js';
import type { CatalogSnapshot } from '../catalog/snapshot.js';

export interface GatewayOptions {
  /** Public listeners, and private-link ones (with `proxy`). */
  readonly listeners: readonly ListenerSpec[];
  readonly domain: string;
  readonly limits?: Partial<GatewayLimits>;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly certificates: GatewayCertificates;
  readonly verifierSource: VerifierSource;
  readonly mockSecret: Buffer;
  readonly snapshot: () => CatalogSnapshot;
  readonly network: () => NetworkView;
  readonly registerPendingEndpoint: (server: string, endpoint: PrivateEndpointIdentity) => void;
  readonly socketDir: (serverId: number) => string;
  readonly verifyToken: TokenVerifier;
  readonly principalKeys: (serverId: number, role: string) => ScramKeys;
  readonly audit: AuditGate;
  /** Threat protection: throttling (step 7) and the SQL-injection watch of relayed sessions. */
  readonly threat: ThreatGate;
}

const PUBLIC_ACCESS_OFF = {
  sqlstate: '57P01',
  message: 'terminating connection because public network access was disabled for this server',
};

export class Gateway {
  private readonly listeners = new Map<string, { spec: ListenerSpec; server: net.Server }>();
  private readonly sockets = new Set<net.Socket>();
  private readonly accepted: Counter;
  private readonly policies = new StatementAuditPolicies();
  private publicPort = 0;
  readonly context: GatewayContext;

  constructor(private readonly options: GatewayOptions) {
    const limits = { ...defaultLimits, ...options.limits };
    this.context = {
      domain: options.domain,
      limits,
      bus: options.bus,
      log: options.log,
      certificates: options.certificates,
      verifiers: new VerifierCache(options.verifierSource),
      cancelKeys: new CancelKeys(),
      sessions: new SessionLimiter(limits.maxConnectionsPerServer),
      activeSessions: new Set<ActiveSession>(),
      sessionIndex: new SessionIndex(),
      mockSecret: options.mockSecret,
      metrics: {
        denied: new Counter({ name: 'pgwarden_gateway_denied_total', help: 'Connections refused, by reason.', labelNames: ['reason'], registers: [options.metrics] }),
        sessions: new Gauge({ name: 'pgwarden_gateway_sessions', help: 'Authenticated sessions being relayed.', registers: [options.metrics] }),
      },
      snapshot: options.snapshot,
      network: options.network,
      registerPendingEndpoint: options.registerPendingEndpoint,
      socketDir: options.socketDir,
      verifyToken: options.verifyToken,
      principalKeys: options.principalKeys,
      audit: options.audit,
      threat: options.threat,
      statementAudit: (server) => this.policies.forServer(server, options.snapshot().audit.get(server)),
    };
    this.accepted = new Counter({ name: 'pgwarden_gateway_connections_total', help: 'TCP connections accepted by the gateway.', labelNames: ['listener'], registers: [options.metrics] });
  }

  /** The port the first public listener bound (useful with port 0). */
  get port(): number {
    return this.publicPort;
  }

  /** The port a listener of this kind (and virtual network) bound, or null. */
  portOf(kind: ListenerSpec['kind'], vnet?: string): number | null {
    for (const { spec, server } of this.listeners.values()) {
      if (spec.kind !== kind || (spec.kind === 'private' && spec.vnet !== vnet)) continue;
      const a = server.address();
      if (a && typeof a === 'object') return a.port;
    }
    return null;
  }

  private key(spec: ListenerSpec): string {
    return `${spec.kind}|${spec.kind === 'private' ? spec.vnet : ''}|${spec.host}|${spec.port}`;
  }

  async open(spec: ListenerSpec): Promise<number> {
    const server = net.createServer({ noDelay: true }, (socket) => {
      this.accepted.inc({ listener: spec.kind });
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      handleConnection(socket, this.context, spec).catch((err: unknown) => {
        this.options.log.error({ err }, 'unhandled gateway error');
        socket.destroy();
      });
    });
    server.maxConnections = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.host.includes(':') }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    const port = a && typeof a === 'object' ? a.port : spec.port;
    this.listeners.set(this.key({ ...spec, port }), { spec: { ...spec, port }, server });
    return port;
  }

  async listen(): Promise<void> {
    let publicPort = 0;
    for (const spec of this.options.listeners) {
      // With port 0, every public address shares the port the first one got.
      const port = await this.open(spec.kind === 'public' && spec.port === 0 && publicPort ? { ...spec, port: publicPort } : spec);
      if (spec.kind === 'public' && !publicPort) publicPort = port;
    }
    this.publicPort = publicPort;
  }

  /** Keeps one listener per virtual network that has a listen address (same port as public). */
  async syncVirtualNetworks(view: NetworkView): Promise<void> {
    const wanted = new Map<string, ListenerSpec>();
    for (const vnet of view.vnets.values()) {
      if (!vnet.listenAddress) continue;
      const spec: ListenerSpec = { kind: 'private', vnet: vnet.name, host: vnet.listenAddress, port: this.publicPort };
      wanted.set(this.key(spec), spec);
    }
    for (const [key, { spec, server }] of this.listeners) {
      if (spec.kind === 'private' && !wanted.has(key)) {
        this.listeners.delete(key);
        server.close();
      }
    }
    for (const [key, spec] of wanted) {
      if (this.listeners.has(key)) continue;
      try {
        await this.open(spec);
      } catch (err) {
        this.options.log.error({ err, vnet: spec.kind === 'private' ? spec.vnet : '', host: spec.host }, 'cannot listen for virtual network');
      }
    }
  }

  /** Public access turned off: sessions that did not come through a private endpoint end. */
  enforcePublicAccess(snapshot: CatalogSnapshot): void {
    for (const session of this.context.activeSessions) {
      const server = snapshot.servers.get(session.server);
      if (server?.publicNetworkAccess === 'Disabled' && session.privateEndpoint === null) {
        this.context.activeSessions.delete(session);
        session.handle?.terminate(PUBLIC_ACCESS_OFF);
      }
    }
  }

  /** Stops accepting; open sessions are closed. */
  async close(): Promise<void> {
    // server.close() resolves only once every connection has ended: end them first.
    const closing = [...this.listeners.values()].map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    this.listeners.clear();
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
  }
}
