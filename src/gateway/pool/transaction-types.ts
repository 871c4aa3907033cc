// What a transaction-mode session is started with and what it gives back (transaction-relay.ts).
import type { Duplex } from 'node:stream';
import type { SessionObserver } from '../../pgwire/index.js';
import type { RelayHandle, RelayStats } from '../relay.js';
import type { Lender, ServerConnection } from './types.js';
import type { StatementLimits } from './client-stream.js';

export interface TransactionSessionOptions {
  client: Duplex;
  /** Client bytes read past login. */
  clientRest: Buffer;
  lender: Lender;
  /** Sees the client-facing stream. */
  observer: SessionObserver;
  /** The client's application_name ('' when it sent none): a lent connection that reports
   * another is told the client's before the client's first message. */
  applicationName?: string;
  /** Strict audit durability, as in relay.ts: before server bytes go to the client, wait for this promise when non-null. */
  hold?: () => Promise<void> | null;
  onHandle?: (handle: RelayHandle) => void;
  /** A connection was lent to this client. */
  onLend?: (conn: ServerConnection) => void;
  /** It was given back. */
  onReturn?: (conn: ServerConnection) => void;
  onEnd: (stats: RelayStats) => void;
}

export interface TransactionSession extends RelayHandle {
  current(): ServerConnection | null;
}

export type TransactionLimits = StatementLimits;
