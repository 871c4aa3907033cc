// The gateway tier's channel: the gateway processes of one platform (the platform's own and each
// `pgwarden gateway`) share only the catalog, so they talk through its LISTEN/NOTIFY, on a
// channel of their own next to the change feed's. One LISTEN connection per process, reconnected
// as the change feed is (to whichever catalog host takes the session now); messages are small
// JSON objects this module does not interpret. A message sent while a process was away is lost:
// `connected` tells the owner to ask the others again.
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { FeedConnector } from './change-feed.js';

export const TIER_CHANNEL = 'pgwarden_tier';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
export const MAX_TIER_PAYLOAD = 7900;

export interface TierChannelEvents {
  message: [message: Record<string, unknown>];
  connected: [];
  disconnected: [error: Error | null];
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;

export class TierChannel extends EventEmitter<TierChannelEvents> {
  private client: pg.Client | null = null;
  private closed = false;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | null = null;
  connected = false;

  /** `open` connects the LISTEN client; `db` sends (any pooled connection may NOTIFY). */
  constructor(
    private readonly open: FeedConnector,
    private readonly db: pg.Pool,
  ) {
    super();
  }

  async start(): Promise<void> {
    await this.connect(true);
  }

  /** Sends one message to every process listening (this one included: receivers skip their own). */
  async publish(message: Record<string, unknown>): Promise<void> {
    const text = JSON.stringify(message);
    if (Buffer.byteLength(text) > MAX_TIER_PAYLOAD) throw new Error(`a tier message of ${Buffer.byteLength(text)} bytes is too long for NOTIFY`);
    await this.db.query('select pg_notify($1, $2)', [TIER_CHANNEL, text]);
  }

  private async connect(first: boolean): Promise<void> {
    if (this.closed) return;
    let client: pg.Client | null = null;
    const lost = (c: pg.Client, err: Error | null) => {
      if (this.client !== c) return;
      this.client = null;
      this.connected = false;
      this.emit('disconnected', err);
      c.end().catch(() => undefined);
      this.retry();
    };
    const prepare = (c: pg.Client) => {
      c.on('error', (err) => lost(c, err));
      c.on('end', () => lost(c, null));
      c.on('notification', (msg) => {
        if (this.client !== c || msg.channel !== TIER_CHANNEL || !msg.payload) return;
        let parsed: unknown;
        try {
          parsed = JSON.parse(msg.payload);
        } catch {
          return; // not ours
        }
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) this.emit('message', parsed as Record<string, unknown>);
      });
    };
    try {
      client = await this.open(prepare);
      await client.query(`listen ${TIER_CHANNEL}`);
    } catch (err) {
      client?.end().catch(() => undefined);
      this.retry();
      if (first) throw err;
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.connected = true;
    this.retryMs = FIRST_RETRY_MS;
    this.emit('connected');
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect(false).catch(() => undefined);
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const c = this.client;
    this.client = null;
    this.connected = false;
    if (c) await c.end().catch(() => undefined);
  }
}
