// The gateway: listeners on the public addresses, each connection handed to the pipeline.
import net from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { handleConnection } from './connection.js';
import { CancelKeys } from './cancel-keys.js';
import { SessionLimiter } from './session-limiter.js';
import { VerifierCache, type VerifierSource } from './verifier-cache.js';
import { defaultLimits, type GatewayContext, type GatewayLimits, type NetworkDecision, type NetworkFacts } from './context.js';
import type { GatewayCertificates } from './tls-certificates.js';
import type { EventBus } from '../events/bus.js';
import type { CatalogSnapshot } from '../catalog/snapshot.js';

export interface GatewayOptions {
  readonly hosts: readonly string[];
  readonly port: number;
  readonly domain: string;
  readonly limits?: Partial<GatewayLimits>;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly certificates: GatewayCertificates;
  readonly verifierSource: VerifierSource;
  readonly mockSecret: Buffer;
  readonly snapshot: () => CatalogSnapshot;
  readonly socketDir: (serverId: number) => string;
  readonly decideNetwork?: (facts: NetworkFacts) => NetworkDecision;
}

export class Gateway {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
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
      mockSecret: options.mockSecret,
      metrics: {
        denied: new Counter({ name: 'pgwarden_gateway_denied_total', help: 'Connections refused, by reason.', labelNames: ['reason'], registers: [options.metrics] }),
        sessions: new Gauge({ name: 'pgwarden_gateway_sessions', help: 'Authenticated sessions being relayed.', registers: [options.metrics] }),
      },
      snapshot: options.snapshot,
      socketDir: options.socketDir,
      decideNetwork: options.decideNetwork,
    };
    this.accepted = new Counter({
      name: 'pgwarden_gateway_connections_total',
      help: 'TCP connections accepted by the gateway.',
      registers: [options.metrics],
    });
  }

  private readonly accepted: Counter;

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const a = this.servers[0]?.address();
    return a && typeof a === 'object' ? a.port : this.options.port;
  }

  async listen(): Promise<void> {
    let port = this.options.port;
    for (const host of this.options.hosts) {
      const server = net.createServer({ noDelay: true }, (socket) => {
        this.accepted.inc();
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        handleConnection(socket, this.context).catch((err: unknown) => {
          this.options.log.error({ err }, 'unhandled gateway error');
          socket.destroy();
        });
      });
      server.maxConnections = 10_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers.push(server);
      // With port 0, every address shares the port the first one got.
      if (port === 0) port = this.port;
    }
  }

  /** Stops accepting; open sessions are closed. */
  async close(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const s of this.sockets) s.destroy();
  }
}
