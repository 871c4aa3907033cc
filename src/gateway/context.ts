// Everything a connection needs from the platform, read from memory: no per-connection I/O to
// the catalog. Built once by the Gateway.
import type { Logger } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import type { EventBus } from '../events/bus.js';
import type { CatalogSnapshot } from '../catalog/snapshot.js';
import type { ServerRecord } from '../catalog/servers-repo.js';
import type { ListenerKind } from '../events/types.js';
import type { GatewayCertificates } from './tls-certificates.js';
import type { VerifierCache } from './verifier-cache.js';
import type { CancelKeys } from './cancel-keys.js';
import type { ClientError } from './client-errors.js';
import type { SessionLimiter } from './session-limiter.js';

export interface GatewayLimits {
  readonly handshakeTimeoutMs: number;
  readonly authTimeoutMs: number;
  readonly maxConnectionsPerServer: number;
  readonly maxStartupPacket: number;
}

export const defaultLimits: GatewayLimits = {
  handshakeTimeoutMs: 10_000,
  authTimeoutMs: 10_000,
  maxConnectionsPerServer: 200,
  maxStartupPacket: 10_000,
};

export interface NetworkFacts {
  readonly server: ServerRecord;
  readonly clientAddress: string;
  readonly listener: ListenerKind;
  readonly user: string;
  readonly database: string;
  readonly ssl: boolean;
}

export type NetworkDecision = { readonly allow: true } | { readonly allow: false; readonly reason: string; readonly error: ClientError };

export interface GatewayContext {
  readonly domain: string;
  readonly limits: GatewayLimits;
  readonly bus: EventBus;
  readonly log: Logger;
  readonly certificates: GatewayCertificates;
  readonly verifiers: VerifierCache;
  readonly cancelKeys: CancelKeys;
  readonly sessions: SessionLimiter;
  readonly mockSecret: Buffer;
  readonly metrics: { readonly denied: Counter<'reason'>; readonly sessions: Gauge };
  snapshot(): CatalogSnapshot;
  socketDir(serverId: number): string;
  /** Step 5, supplied by the network layer; absent means no network rules are enforced yet. */
  decideNetwork?: (facts: NetworkFacts) => NetworkDecision;
}
