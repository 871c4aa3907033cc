// Everything a connection needs from the platform, read from memory: no per-connection I/O to
// the catalog. Built once by the Gateway.
import type { Logger } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import type { EventBus } from '../events/bus.js';
import type { CatalogSnapshot } from '../catalog/snapshot.js';
import type { Cidr } from '../network/address.js';
import type { NetworkView, PrivateEndpointIdentity } from './network-stage.js';
import type { GatewayCertificates } from './tls-certificates.js';
import type { VerifierCache } from './verifier-cache.js';
import type { CancelKeys } from './cancel-keys.js';
import type { SessionLimiter } from './session-limiter.js';
import type { SessionIndex } from './session-index.js';
import type { RelayHandle } from './relay.js';
import type { SessionConsumer } from '../pgwire/observer/index.js';
import type { TokenVerifier } from './token-login.js';
import type { StatementAuditConfig } from '../audit/statement-audit.js';
import type { ScramKeys } from '../auth/scram/keys.js';
import type { ServerPools } from './pool/pool.js';
import type { NativeRelayHost } from './native/host.js';

export interface ActiveSession {
  readonly server: string;
  /** The private endpoint it came through, or null for public and virtual-network traffic. */
  readonly privateEndpoint: string | null;
  /** The gateway's session id and the server process serving it: how server-side audit lines
   * (pgAudit) are joined to the session. */
  readonly connId: string;
  /** The backend it holds (session mode, no pooling), or the first one it was lent (transaction
   * mode: the index records each lend). */
  readonly backendPid: number;
  readonly user: string;
  readonly applicationName: string | undefined;
  handle: RelayHandle | null;
}

export interface GatewayLimits {
  readonly handshakeTimeoutMs: number;
  readonly authTimeoutMs: number;
  /** Client sessions per server that is not pooled (each is a server backend). */
  readonly maxConnectionsPerServer: number;
  /** Client sessions per pooled server (its backends are capped by the pool size instead). */
  readonly maxPooledClientsPerServer: number;
  /** A client waiting this long for a pooled server connection is refused (PgBouncer's
   * query_wait_timeout). */
  readonly poolWaitTimeoutMs: number;
  /** A pooled server connection left idle this long is closed (PgBouncer's server_idle_timeout). */
  readonly poolIdleTimeoutMs: number;
  /** How often the verifiers of roles with pools are read again, to flush pools of a role whose
   * password changed. */
  readonly poolVerifierPollMs: number;
  readonly maxStartupPacket: number;
  /** Connections not yet authenticated, in all (W1). */
  readonly maxPreauthConnections: number;
  /** Connections not yet authenticated from one IPv4 address or one IPv6 /64. */
  readonly maxPreauthPerAddress: number;
  /** A connection that sends nothing for this long after accept is closed. */
  readonly firstByteTimeoutMs: number;
  /** New pre-auth connections are refused while fewer file descriptors than this are left. */
  readonly descriptorReserve: number;
  /** Refusals before authentication are summed up in one audit event per this interval. */
  readonly preauthReportIntervalMs: number;
}

export const defaultLimits: GatewayLimits = {
  handshakeTimeoutMs: 10_000,
  authTimeoutMs: 10_000,
  maxConnectionsPerServer: 200,
  maxPooledClientsPerServer: 10_000,
  poolWaitTimeoutMs: 120_000,
  poolIdleTimeoutMs: 600_000,
  poolVerifierPollMs: 5_000,
  maxStartupPacket: 10_000,
  maxPreauthConnections: 2_000,
  maxPreauthPerAddress: 100,
  firstByteTimeoutMs: 5_000,
  descriptorReserve: 1_000,
  preauthReportIntervalMs: 10_000,
};

/** Where a listener is and what arrives on it. `proxy`: PROXY protocol required, accepted only
 * from these load-balancer networks. */
export type ListenerSpec =
  | { readonly kind: 'public'; readonly host: string; readonly port: number; readonly proxy?: readonly Cidr[] }
  | { readonly kind: 'private'; readonly vnet: string; readonly host: string; readonly port: number }
  | { readonly kind: 'private-link'; readonly host: string; readonly port: number; readonly proxy: readonly Cidr[] };

/** What the gateway needs of the audit log. */
export interface AuditGate {
  /** False under failClosed while the log cannot be written: new connections are refused. */
  readonly acceptsConnections: boolean;
  /** Under strict durability: resolves once every event published so far is on disk (at once
   * under batched durability). */
  durable(): Promise<void>;
  /** True under strict durability. */
  readonly strict: boolean;
  /** Strict durability with appends in flight: resolves once they are on disk; else null. */
  pendingDurable(): Promise<void> | null;
  /** Records `count` events given as their canonical JSON (UTF-8), each after its length (u32
   * LE): the native relay's statement records, in a run. Absent where events go elsewhere first
   * (a gateway process other than the platform's). */
  appendRecords?(data: Buffer, count: number): void;
}

/** What the gateway needs of threat protection. */
export interface ThreatGate {
  /** Step 7: a throttling block in force for this (server, address, user), or null. */
  blocked(server: string, address: string, user: string): unknown | null;
  /** A watch of the session's statements for SQL injection, or null when the server does not ask. */
  sqlTap(
    server: string,
    role: string,
    applicationName: string | undefined,
    source?: { clientAddress?: string; database?: string; onStopped?: (reason: string) => void },
  ): SessionConsumer | null;
}

export interface GatewayContext {
  readonly domain: string;
  readonly limits: GatewayLimits;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly certificates: GatewayCertificates;
  readonly verifiers: VerifierCache;
  readonly cancelKeys: CancelKeys;
  /** A CancelRequest whose key no session of this process has: handed to the gateway's other
   * processes, if there are any; resolves once they have forwarded it or found no such key. */
  readonly cancelElsewhere?: (processId: number, secretKey: Buffer) => Promise<void>;
  readonly sessions: SessionLimiter;
  /** Server connection pools of the servers in session or transaction mode. */
  readonly pools: ServerPools;
  readonly mockSecret: Buffer;
  readonly metrics: { readonly denied: Counter<'reason'>; readonly sessions: Gauge };
  snapshot(): CatalogSnapshot;
  socketDir(serverId: number): string;
  /** Sessions being relayed, so a policy change can end the ones it no longer allows. */
  readonly activeSessions: Set<ActiveSession>;
  /** Sessions by (server, backend pid), ended ones kept a minute, for joining server logs. */
  readonly sessionIndex: SessionIndex;
  /** Network rules and virtual networks, as of the last catalog snapshot. */
  network(): NetworkView;
  readonly audit: AuditGate;
  readonly threat: ThreatGate;
  /** The server's statement audit (classifier and class filter), or null when it audits none. */
  statementAudit(server: string): StatementAuditConfig | null;
  /** Verifies a principal's access token (signature, issuer, audience, lifetime). */
  readonly verifyToken: TokenVerifier;
  /** SCRAM keys the gateway logs in with as a principal's role. */
  principalKeys(serverId: number, role: string): ScramKeys;
  /** Records an endpoint identity seen for the first time as a Pending connection of the server. */
  registerPendingEndpoint(server: string, endpoint: PrivateEndpointIdentity): void;
  /** The native relay (gateway/native/): TLS connections are handed to its addon, and their
   * sessions relayed on its threads (but transaction mode). Unset or null: the JavaScript relay.
   * Set by the composition (app/gateway-part.ts) once the relay is chosen, before listening. */
  nativeRelay?: NativeRelayHost | null;
  /** Quiet statements on the native relay (`up --quiet-statements`; default on): false, every
   * statement goes to the session's observer. Read at each session's start. */
  quietStatements?: boolean;
}
