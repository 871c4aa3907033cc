// The gateway: listeners (public addresses, one per virtual network, private-link behind load
// balancers), each connection handed to the pipeline in connection.ts.
import net from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { handleConnection } from './connection.js';
import { forwardCancel } from './handshake/cancel.js';
import { CancelKeys } from './cancel-keys.js';
import { SessionLimiter } from './session-limiter.js';
import { SessionIndex } from './session-index.js';
import { ServerPools } from './pool/pool.js';
import { PreauthAdmission, addressBucket } from './preauth-admission.js';
import { PreauthReport } from './preauth-report.js';
import { ProcDescriptors, nofileSoftLimit, raiseNofileLimit } from './descriptors.js';
import { listenerFor, type BoundAddress } from './listener-select.js';
import { VnetListeners, type VnetListenerView } from './vnet-listeners.js';
import { errorResponse } from '../pgwire/index.js';
import { clientErrors } from '../pgwire/client-errors.js';
import { normalizeAddress } from './handshake/handshake.js';
import type { ThreatGate } from './context.js';
import { StatementAuditPolicies } from '../audit/statement-audit.js';
import { VerifierCache, type VerifierSource } from './verifier-cache.js';
import { defaultLimits, type ActiveSession, type GatewayContext, type GatewayLimits, type ListenerSpec } from './context.js';
import type { NetworkView, PrivateEndpointIdentity } from './network-stage.js';
import type { GatewayCertificates } from './tls-certificates.js';
import type { TokenVerifier } from './token-login.js';
import type { AuditGate } from './context.js';
import type { ScramKeys } from '../auth/scram/keys.js';
import { now, type EventBus } from '../events/bus.js';
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
  /** Told of every listening socket this gateway opens and closes, so the gateway's other
   * processes can accept on the same sockets (`up --gateway-workers N`). */
  readonly onListener?: (event: ListenerEvent) => void;
  /** A CancelRequest no session of this process has a key for (see GatewayContext). */
  readonly cancelElsewhere?: (processId: number, secretKey: Buffer) => Promise<void>;
  /** This process's part of each pool size (see PoolsOptions.sizeShare). */
  readonly poolSizeShare?: (poolSize: number) => number;
  /** Where sessions are indexed by backend (default: in this process). */
  readonly sessionIndex?: SessionIndex;
}

/** A listening socket opened (to be shared) or closed, by an id the gateway gives it. */
export type ListenerEvent =
  | { readonly kind: 'opened'; readonly id: number; readonly spec: ListenerSpec; readonly server: net.Server }
  | { readonly kind: 'closed'; readonly id: number };

const PUBLIC_ACCESS_OFF = {
  sqlstate: '57P01',
  message: 'terminating connection because public network access was disabled for this server',
};

export class Gateway {
  /** Public and private-link listeners (virtual networks' own sockets are in `vnets`). */
  private readonly listeners: { spec: ListenerSpec; server: net.Server }[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly accepted: Counter;
  private readonly policies = new StatementAuditPolicies();
  private readonly descriptors: ProcDescriptors;
  private readonly admission: PreauthAdmission;
  private readonly preauth: PreauthReport;
  private readonly vnets: VnetListeners;
  /** Listening sockets another gateway process opened and shares with this one. */
  private readonly adopted = new Map<number, net.Server>();
  private nextListenerId = 1;
  private publicPort = 0;
  readonly context: GatewayContext;

  constructor(private readonly options: GatewayOptions) {
    const limits = { ...defaultLimits, ...options.limits };
    // Every descriptor the hard limit allows (Node raises it at start too; this makes sure).
    let fdLimit: number | null = null;
    try {
      const nofile = raiseNofileLimit();
      if (nofile.raisedFrom !== undefined) options.log.info({ from: nofile.raisedFrom, to: nofile.soft }, 'open-files limit raised');
      fdLimit = nofile.soft;
    } catch (err) {
      options.log.warn({ err }, 'cannot raise the open-files limit: the gateway keeps the one it has');
      fdLimit = nofileSoftLimit();
    }
    fdLimit ??= 1024;
    // A reserve larger than a quarter of the limit would refuse everyone on a small limit.
    const reserve = Math.min(limits.descriptorReserve, Math.floor(fdLimit / 4));
    this.descriptors = new ProcDescriptors(fdLimit, reserve);
    this.admission = new PreauthAdmission({ ...limits, descriptorReserve: reserve }, this.descriptors);
    this.preauth = new PreauthReport(options.bus, options.metrics, limits.preauthReportIntervalMs, () => this.admission.open);
    this.vnets = new VnetListeners({
      open: (spec) => this.open(spec).then(({ server }) => server),
      publicBound: () => this.publicBound(),
      publicPort: () => this.publicPort,
      // Into the audit log: a network that stops being served is not only a line in the log.
      changed: (vnet, status) =>
        options.bus.publish({
          type: 'gateway.vnet_listener',
          time: now(),
          vnet,
          address: status.address,
          state: status.state,
          ...(status.state === 'Failed' ? { reason: status.reason } : {}),
        }),
      log: options.log,
    });
    const verifiers = new VerifierCache(options.verifierSource);
    this.context = {
      domain: options.domain,
      limits,
      bus: options.bus,
      log: options.log,
      certificates: options.certificates,
      verifiers,
      cancelKeys: new CancelKeys(),
      ...(options.cancelElsewhere ? { cancelElsewhere: options.cancelElsewhere } : {}),
      sessions: new SessionLimiter(limits.maxConnectionsPerServer, limits.maxPooledClientsPerServer),
      pools: new ServerPools({
        snapshot: options.snapshot,
        socketDir: options.socketDir,
        refreshVerifier: (serverId, role) => verifiers.refresh(serverId, role),
        limits,
        log: options.log,
        ...(options.poolSizeShare ? { sizeShare: options.poolSizeShare } : {}),
      }),
      activeSessions: new Set<ActiveSession>(),
      sessionIndex: options.sessionIndex ?? new SessionIndex(),
      mockSecret: options.mockSecret,
      metrics: {
        denied: new Counter({
          name: 'pgwarden_gateway_denied_total',
          help: 'Connections refused, by reason.',
          labelNames: ['reason'],
          registers: [options.metrics],
        }),
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
    this.accepted = new Counter({
      name: 'pgwarden_gateway_connections_total',
      help: 'TCP connections accepted by the gateway.',
      labelNames: ['listener'],
      registers: [options.metrics],
    });
  }

  /** The port the first public listener bound (useful with port 0). */
  get port(): number {
    return this.publicPort;
  }

  /** The port a listener of this kind (and virtual network) receives on, or null. */
  portOf(kind: ListenerSpec['kind'], vnet?: string): number | null {
    if (kind === 'private') return vnet === undefined ? null : this.vnets.portOf(vnet);
    for (const { spec, server } of this.listeners) {
      if (spec.kind !== kind) continue;
      const a = server.address();
      if (a && typeof a === 'object') return a.port;
    }
    return null;
  }

  /** Server connection pools: what `pgwarden server pool show` and /metrics report. */
  get pools(): ServerPools {
    return this.context.pools;
  }

  /** What the control plane may ask about virtual networks' listeners. */
  get vnetListeners(): VnetListenerView {
    return this.vnets;
  }

  private publicBound(): BoundAddress[] {
    const out: BoundAddress[] = [];
    for (const { spec, server } of this.listeners) {
      if (spec.kind !== 'public' || spec.proxy) continue;
      const a = server.address();
      if (a && typeof a === 'object') out.push({ address: a.address, port: a.port });
    }
    return out;
  }

  /** Opens one listener; its connections go through admission to the pipeline. */
  private async open(spec: ListenerSpec): Promise<{ server: net.Server; port: number }> {
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket, spec));
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
    const hook = this.options.onListener;
    if (hook) {
      const id = this.nextListenerId++;
      hook({ kind: 'opened', id, spec: { ...spec, port }, server });
      server.once('close', () => hook({ kind: 'closed', id }));
    }
    return { server, port };
  }

  /** Accepts on a listening socket another gateway process opened (and keeps open): the kernel
   * hands each connection to one of the processes waiting on it. */
  adopt(id: number, spec: ListenerSpec, server: net.Server): void {
    this.adopted.get(id)?.close();
    this.adopted.set(id, server);
    server.maxConnections = 10_000;
    server.on('connection', (socket: net.Socket) => {
      socket.setNoDelay(true);
      this.accept(socket, spec);
    });
    if (spec.kind === 'public' && !spec.proxy && !this.publicPort) this.publicPort = spec.port;
  }

  /** The other process closed that listening socket: this one stops accepting on it too. */
  release(id: number): void {
    this.adopted.get(id)?.close();
    this.adopted.delete(id);
  }

  /** A CancelRequest another gateway process received: forwarded if a session here has the key. */
  cancelHere(processId: number, secretKey: Buffer): Promise<boolean> {
    return forwardCancel(this.context.cancelKeys, processId, secretKey);
  }

  /** Step 1: a connection is admitted (pre-auth caps, descriptor reserve), told which listener
   * it belongs to by its own local address, and handed to the pipeline. */
  private accept(socket: net.Socket, spec: ListenerSpec): void {
    this.descriptors.accepted();
    socket.on('error', () => undefined);
    const address = normalizeAddress(socket.remoteAddress ?? '');
    const behindProxy = spec.kind !== 'private' && spec.proxy !== undefined;
    const ticket = this.admission.admit(address, !behindProxy);
    if (typeof ticket === 'string') {
      this.preauth.refused(ticket, behindProxy ? address : addressBucket(address));
      // PostgreSQL's answer, in plaintext before any TLS (as its postmaster does): the client
      // cannot authenticate it, but it tells a human what happened.
      const frame = errorResponse({ severity: 'FATAL', sqlstate: clientErrors.tooManyClients.sqlstate, message: clientErrors.tooManyClients.message });
      if (ticket === 'descriptor-reserve') {
        socket.write(frame);
        socket.destroy();
      } else {
        socket.end(frame);
        setTimeout(() => socket.destroy(), 250).unref();
      }
      return;
    }
    const listener = listenerFor(spec, socket.localAddress, this.vnets.addresses);
    this.accepted.inc({ listener: listener.kind });
    this.sockets.add(socket);
    const firstByte = setTimeout(() => {
      if (socket.bytesRead > 0 || socket.destroyed) return;
      this.preauth.refused('first-byte-timeout', ticket.bucket || address);
      socket.destroy();
    }, this.context.limits.firstByteTimeoutMs);
    socket.once('close', () => {
      clearTimeout(firstByte);
      ticket.release();
      this.sockets.delete(socket);
    });
    handleConnection(socket, this.context, listener, ticket).catch((err: unknown) => {
      this.options.log.error({ err }, 'unhandled gateway error');
      socket.destroy();
    });
  }

  async listen(): Promise<void> {
    let publicPort = 0;
    for (const spec of this.options.listeners) {
      // With port 0, every public address shares the port the first one got.
      const wanted = spec.kind === 'public' && spec.port === 0 && publicPort ? { ...spec, port: publicPort } : spec;
      const { server, port } = await this.open(wanted);
      this.listeners.push({ spec: { ...wanted, port }, server });
      if (spec.kind === 'public' && !publicPort) publicPort = port;
    }
    this.publicPort = publicPort;
  }

  /** Keeps virtual networks served: a socket of their own, or a public listener that already
   * receives their address (a wildcard bind); each one's state says which, or why not. */
  syncVirtualNetworks(view: NetworkView): Promise<void> {
    return this.vnets.sync(view);
  }

  /** A gateway process that accepts on sockets another one opened (adopt()) opens none of its
   * own, but still tells a network's traffic on a public listener apart by its address. */
  followVirtualNetworks(view: NetworkView): void {
    this.vnets.followAddresses(view);
  }

  /** Public access turned off: sessions that did not come through a private endpoint end. */
  enforcePublicAccess(snapshot: CatalogSnapshot): void {
    // Pools of servers stopped, deleted or no longer pooled close with the same snapshot.
    this.context.pools.sync(snapshot);
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
    const closing = [...this.listeners.map(({ server }) => server), ...this.adopted.values()].map(
      (server) => new Promise<void>((r) => server.close(() => r())),
    );
    this.listeners.length = 0;
    this.adopted.clear();
    const vnets = this.vnets.close();
    for (const s of this.sockets) s.destroy();
    this.context.pools.close();
    await Promise.all([...closing, vnets]);
    this.preauth.flush();
  }
}
