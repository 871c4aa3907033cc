// What ServerPools (pool.ts) is built with and what its callers hand it: the limits and options
// of the pools, the keys a client proved, the client's socket a waiter watches, and the SQLSTATE
// of a client refused for waiting too long.
import type { Logger } from 'pino';
import type { CatalogSnapshot } from '../../catalog/snapshot.js';
import type { connectBackend } from '../backend.js';
import type { VerifierLookup } from '../verifier-cache.js';

/** PgBouncer answers a query_wait_timeout with 08P01; clients and drivers treat 53300
 * (too_many_connections) as "try again later", which is what this is, so the gateway sends that. */
export const POOL_WAIT_SQLSTATE = '53300';

export interface PoolLimits {
  /** A client waiting this long for a server connection is refused (PgBouncer's query_wait_timeout). */
  readonly poolWaitTimeoutMs: number;
  /** An idle server connection unused this long is closed (PgBouncer's server_idle_timeout). */
  readonly poolIdleTimeoutMs: number;
  /** How often the verifiers of roles with pools are read again. */
  readonly poolVerifierPollMs: number;
}

export interface PoolsOptions {
  readonly snapshot: () => CatalogSnapshot;
  readonly socketDir: (serverId: number) => string;
  /** Reads a role's verifier from the server, bypassing any cache. */
  readonly refreshVerifier: (serverId: number, role: string) => Promise<VerifierLookup>;
  readonly limits: PoolLimits;
  readonly log: Logger;
  /** This process's part of a server's pool size when several gateway processes share the
   * server (`up --gateway-workers N`): the backends stay within the size the owner set. */
  readonly sizeShare?: (poolSize: number) => number;
  /** Tests: how a connection is opened. */
  readonly connect?: typeof connectBackend;
  /** Tests: the clock. */
  readonly now?: () => number;
}

/** What a client proved: its keys, and the verifier (or principal key) they were proved against. */
export interface ProvedKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
  /** Identifies the verifier: a different value means the password changed. */
  readonly verifier: string;
  /** Poll the role's verifier on the server (SCRAM roles; not the platform's principal roles). */
  readonly poll: boolean;
}

/** The client's socket, to stop waiting for it once it closed. */
export interface ClientGone {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}
