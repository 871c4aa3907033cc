// The catalog's change feed: one LISTEN connection (listen-connection.ts) that tells subscribers
// a table changed. While it is down, subscribers keep what they had (fail-static). Every
// (re)connection tells them to re-read everything (RESYNC): notifications sent while it was away
// are lost with the connection.
import { EventEmitter } from 'node:events';
import { ListenConnection, type FeedConnector } from './listen-connection.js';

export type { FeedConnector } from './listen-connection.js';

export const CHANGE_CHANNEL = 'pgwarden_changes';

export interface CatalogChange {
  readonly table: string;
  readonly op: 'INSERT' | 'UPDATE' | 'DELETE' | 'RESYNC';
  readonly name?: string;
}

export interface ChangeFeedEvents {
  change: [change: CatalogChange];
  connected: [];
  disconnected: [error: Error | null];
}

export class ChangeFeed extends EventEmitter<ChangeFeedEvents> {
  private readonly listen: ListenConnection;

  constructor(open: FeedConnector) {
    super();
    this.listen = new ListenConnection(open, CHANGE_CHANNEL);
    this.listen.on('payload', (text) => {
      try {
        this.emit('change', JSON.parse(text) as CatalogChange);
      } catch {
        /* not ours */
      }
    });
    this.listen.on('disconnected', (err) => this.emit('disconnected', err));
    this.listen.on('connected', () => {
      this.emit('connected');
      // Anything may have changed while we were away.
      this.emit('change', { table: '*', op: 'RESYNC' });
    });
  }

  get connected(): boolean {
    return this.listen.connected;
  }

  /** The host the feed is (or was last) connected to: after a failover, the new primary. */
  get server(): { readonly host: string; readonly port: number } | null {
    return this.listen.server;
  }

  /** Connects; throws (saying why the catalog cannot be reached) when the first attempt fails. */
  start(): Promise<void> {
    return this.listen.start();
  }

  stop(): Promise<void> {
    return this.listen.stop();
  }
}
