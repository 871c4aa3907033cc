// The contract between the connection pool (pool.ts), the relays that use it (session mode:
// relay.ts; transaction mode: transaction-relay.ts) and the control plane that reports on it.
// A server connection is always opened by the gateway with SCRAM keys a client proved; the pool
// never holds a password.
import type net from 'node:net';
import type { PoolMode } from '../../catalog/servers-repo.js';

export type { PoolMode };

/** One authenticated connection to a server, owned by the pool while idle and lent to one
 * client at a time. */
export interface ServerConnection {
  /** Unique within the process, for logs and tests. */
  readonly id: number;
  readonly socket: net.Socket;
  /** The server's real backend process id and cancel secret (the secret never leaves the gateway). */
  readonly processId: number;
  readonly secretKey: Buffer;
  /** The server's current ParameterStatus values (name → value), kept up to date by whoever
   * holds the connection: a client that gets a warm connection is told these. */
  readonly parameters: Map<string, string>;
  /** Names of the statements prepared on this connection by the transaction-mode relay (its own
   * names, not a client's). Cleared when the connection is reset. */
  readonly prepared: Set<string>;
  /** Bytes the server sent past its last ReadyForQuery that nobody has read yet (normally empty). */
  rest: Buffer;
}

/** What a relay does with a server connection it gives back. */
export type ReturnState =
  /** At a message boundary after ReadyForQuery 'I' with nothing in flight: reusable. */
  | 'idle'
  /** Anything else (in a transaction, mid-message, the server closed, a protocol error): closed. */
  | 'broken';

/** A client session's access to its pool: transaction mode lends a connection per transaction. */
export interface Lender {
  /** Waits for a server connection of the session's pool (FIFO among waiting clients). Rejects
   * with PoolWaitError when none comes in time or the pool was closed. */
  acquire(): Promise<ServerConnection>;
  /** A warm connection at once when one is idle and no client waits, else null (then `acquire`):
   * a transaction that finds one starts in the same turn, with no promise or pause. */
  tryAcquire?(): ServerConnection | null;
  /** Gives the connection back. 'idle' connections go to the next waiting client. */
  release(conn: ServerConnection, state: ReturnState): void;
}

/** A client waited too long for a server connection, or the pool was closed while it waited. */
export class PoolWaitError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
  ) {
    super(message);
  }
}

/** `pgwarden server pool show NAME`, GET /servers/{name}/pool, and /metrics: one row per pool
 * (role, database and the startup parameters that tell pools apart). */
export interface PoolStats {
  readonly server: string;
  readonly mode: PoolMode;
  readonly user: string;
  readonly database: string;
  /** Client sessions of this pool now (authenticated, not yet ended). */
  readonly clients: number;
  /** Clients waiting for a server connection now. */
  readonly waiting: number;
  /** Server connections lent to a client now. */
  readonly active: number;
  /** Server connections ready to be lent. */
  readonly idle: number;
  /** Server connections being opened or reset. */
  readonly opening: number;
  readonly poolSize: number;
  /** Times a client had to wait for a server connection, since the pool was made. */
  readonly waits: number;
  /** Total time clients spent waiting, milliseconds. */
  readonly waitMs: number;
  /** Server connections opened, since the pool was made. */
  readonly opened: number;
  /** Warm connections handed to a client (a login or a transaction that opened no new backend). */
  readonly reused: number;
}

/** What the control plane reads: the pools of one server (empty when it has none). */
export interface PoolStatsSource {
  poolStats(server: string): PoolStats[];
}
