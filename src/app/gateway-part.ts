// The gateway of a platform process: its TLS certificate (following the servers' names) and the
// listeners, deciding from the catalog snapshot. The same part in `up` and in a gateway-only
// process; only `up` writes the certificate files (one writer).
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { EventBus } from '../events/bus.js';
import type { PlatformCa } from '../host/ca.js';
import { loadOrCreateSecret } from '../host/secrets.js';
import { TokenVerifiers } from '../auth/token-verifiers.js';
import type { PrincipalKeys } from '../auth/principal-keys.js';
import type { SnapshotStore } from '../catalog/snapshot.js';
import { PrivateEndpointsRepo } from '../catalog/private-endpoints-repo.js';
import { Gateway, type GatewayOptions } from '../gateway/gateway.js';
import type { ListenerSpec } from '../gateway/context.js';
import { parseTrustedCidrs } from '../gateway/proxy-stage.js';
import { GatewayCertificates } from '../gateway/tls-certificates.js';
import { chooseRelay, relayThreads } from '../gateway/native/host.js';
import type { MaintenanceConnections } from '../engine/maintenance.js';
import type { Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export interface GatewayPart extends Part {
  readonly gateway: Gateway;
}

/** The operator's certificate files, or one issued from the platform CA for every server name;
 * `persist`: this process writes the issued certificate (only `up` does). */
export function loadGatewayCertificates(
  options: PlatformOptions,
  host: Host,
  ca: PlatformCa,
  snapshots: SnapshotStore,
  persist: boolean,
): Promise<GatewayCertificates> {
  return GatewayCertificates.load({
    paths: host.paths,
    ca,
    domain: options.domain,
    serverNames: [...snapshots.snapshot.servers.keys()],
    certFile: options.tlsCertFile,
    keyFile: options.tlsKeyFile,
    persist,
  });
}

export function listenerSpecs(o: PlatformOptions): ListenerSpec[] {
  const specs: ListenerSpec[] = o.gatewayHosts.map((host) => ({ kind: 'public' as const, host, port: o.gatewayPort }));
  if (o.privateLink) {
    const proxy = parseTrustedCidrs(o.privateLink.loadBalancers);
    for (const host of o.privateLink.hosts) specs.push({ kind: 'private-link', host, port: o.privateLink.port, proxy });
  }
  return specs;
}

interface GatewayDeps {
  readonly bus: EventBus;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly db: pg.Pool;
  readonly snapshots: SnapshotStore;
  readonly certificates: GatewayCertificates;
  readonly principalKeys: PrincipalKeys;
  /** Role verifiers for SCRAM, and where each server's socket is. */
  readonly maintenance: MaintenanceConnections;
  readonly audit: GatewayOptions['audit'];
  readonly threat: GatewayOptions['threat'];
  /** False in a gateway process of `up --gateway-workers N` other than the platform's: it opens
   * no listener of its own and accepts on the sockets the platform process shares (adopt()). */
  readonly listens?: boolean;
  /** How this process shares the work with the gateway's other processes. */
  readonly shared?: Pick<GatewayOptions, 'onListener' | 'cancelElsewhere' | 'poolSizeShare' | 'sessionIndex'> & { readonly limits?: GatewayOptions['limits'] };
}

/** The gateway, listening, with its virtual-network listeners and certificate following the snapshot. */
export async function startGateway(options: PlatformOptions, host: Host, d: GatewayDeps): Promise<GatewayPart> {
  const { snapshots, certificates, log } = d;
  // The relay first: `--relay native` without a loadable addon fails the start, before listening.
  const relay = chooseRelay(options.relay, relayThreads(options.gatewayWorkers ?? 1, options.relayThreads), log);
  const nativeHost = relay.host;
  if (nativeHost !== null) {
    new Counter({
      name: 'pgwarden_gateway_relay_backlog_waits_total',
      help: 'Times the native relay stopped reading until the audit and the SQL watch caught up with what it observed.',
      registers: [d.metrics],
      collect() {
        this.reset();
        this.inc(nativeHost.addon.backlogStats().waits);
      },
    });
  }
  const privateEndpoints = new PrivateEndpointsRepo(d.db);
  const tokenVerifiers = new TokenVerifiers();
  const gateway = new Gateway({
    listeners: d.listens === false ? [] : listenerSpecs(options),
    domain: options.domain,
    limits: options.gatewayLimits,
    ...d.shared,
    bus: d.bus,
    log,
    metrics: d.metrics,
    certificates,
    verifierSource: d.maintenance,
    mockSecret: Buffer.from(loadOrCreateSecret(path.join(host.paths.secretsDir, 'scram-mock.secret')), 'base64url'),
    snapshot: () => snapshots.snapshot,
    network: () => snapshots.snapshot.network,
    registerPendingEndpoint: (server, endpoint) => {
      privateEndpoints
        .registerPending(server, endpoint.id, endpoint.kind)
        .catch((err: Error) => log.error({ err, server }, 'could not register a pending private endpoint'));
    },
    socketDir: (id) => d.maintenance.socketDir(id),
    verifyToken: (token, admin) => tokenVerifiers.verify(token, admin),
    principalKeys: (id, role) => d.principalKeys.keys(id, role),
    audit: d.audit,
    threat: d.threat,
  });
  gateway.context.nativeRelay = relay.host;
  gateway.context.quietStatements = options.quietStatements !== 'off';
  const followNetworks = (view: typeof snapshots.snapshot.network) =>
    d.listens === false ? gateway.followVirtualNetworks(view) : gateway.syncVirtualNetworks(view);
  try {
    await gateway.listen();
    await followNetworks(snapshots.snapshot.network);
  } catch (err) {
    await gateway.close().catch(() => undefined);
    throw err;
  }
  snapshots.on('updated', (snap) => {
    // A server created or renamed: its host name into the certificate (same key, no session dropped).
    certificates.follow(snap.servers.keys()).catch((err: Error) => log.error({ err }, 'gateway certificate could not be reissued for the servers'));
    gateway.enforcePublicAccess(snap);
    void followNetworks(snap.network);
  });
  return { gateway, stop: () => gateway.close() };
}
