// The gateway tier's channel: the gateway processes of one platform (the platform's own and each
// `pgwarden gateway`) share only the catalog, so they talk through its LISTEN/NOTIFY, on a
// channel of their own next to the change feed's. One LISTEN connection per process, reconnected
// as the change feed is (to whichever catalog host takes the session now); messages are small
// JSON objects this module does not interpret. A message sent while a process was away is lost:
// `connected` tells the owner to ask the others again.
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { ListenConnection, type FeedConnector } from './listen-connection.js';

export const TIER_CHANNEL = 'pgwarden_tier';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const MAX_TIER_PAYLOAD = 7900;

export interface TierChannelEvents {
  message: [message: Record<string, unknown>];
  connected: [];
  disconnected: [error: Error | null];
}

export class TierChannel extends EventEmitter<TierChannelEvents> {
  private readonly listen: ListenConnection;

  /** `open` connects the LISTEN client; `db` sends (any pooled connection may NOTIFY). */
  constructor(
    open: FeedConnector,
    private readonly db: pg.Pool,
  ) {
    super();
    this.listen = new ListenConnection(open, TIER_CHANNEL);
    this.listen.on('payload', (text) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return; // not ours
      }
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) this.emit('message', parsed as Record<string, unknown>);
    });
    this.listen.on('connected', () => this.emit('connected'));
    this.listen.on('disconnected', (err) => this.emit('disconnected', err));
  }

  get connected(): boolean {
    return this.listen.connected;
  }

  start(): Promise<void> {
    return this.listen.start();
  }

  /** Sends one message to every process listening (this one included: receivers skip their own). */
  async publish(message: Record<string, unknown>): Promise<void> {
    const text = JSON.stringify(message);
    if (Buffer.byteLength(text) > MAX_TIER_PAYLOAD) throw new Error(`a tier message of ${Buffer.byteLength(text)} bytes is too long for NOTIFY`);
    await this.db.query('select pg_notify($1, $2)', [TIER_CHANNEL, text]);
  }

  stop(): Promise<void> {
    return this.listen.stop();
  }
}
