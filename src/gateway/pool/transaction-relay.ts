// Placeholder until the transaction-mode relay lands (another engineer writes it): the export
// the gateway calls, so this branch compiles. Transaction mode is refused at login meanwhile.
import type { Duplex } from 'node:stream';
import type { SessionObserver } from '../../pgwire/index.js';
import type { RelayHandle, RelayStats } from '../relay.js';
import type { Lender, ServerConnection } from './types.js';

export interface TransactionSessionOptions {
  client: Duplex;
  clientRest: Buffer; // client bytes read past login
  lender: Lender;
  observer: SessionObserver; // sees the client-facing stream
  hold?: () => Promise<void> | null; // strict audit durability, as in relay.ts
  onHandle?: (handle: RelayHandle) => void;
  onLend?: (conn: ServerConnection) => void; // a connection was lent to this client
  onReturn?: (conn: ServerConnection) => void; // it was given back
  onEnd: (stats: RelayStats) => void;
}

export interface TransactionSession extends RelayHandle {
  current(): ServerConnection | null;
}

export function startTransactionSession(_o: TransactionSessionOptions): TransactionSession {
  throw new Error('transaction mode not built yet');
}
