// The catalog's change feed: one LISTEN connection that tells subscribers a table changed.
// It reconnects by itself (to whichever catalog host takes the session now: after a failover,
// the new primary), with backoff capped at a few seconds; while it is down, subscribers keep
// what they had (fail-static). Every (re)connection tells them to re-read everything (RESYNC):
// notifications sent while it was away are lost with the connection.
import { EventEmitter } from 'node:events';
import type pg from 'pg';

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

/** Opens a connected client; `prepare` attaches listeners before it connects. */
export type FeedConnector = (prepare: (client: pg.Client) => void) => Promise<pg.Client>;

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;

export class ChangeFeed extends EventEmitter<ChangeFeedEvents> {
  private client: pg.Client | null = null;
  private closed = false;
  private everConnected = false;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | null = null;
  connected = false;
  /** The host the feed is (or was last) connected to: after a failover, the new primary. */
  server: { readonly host: string; readonly port: number } | null = null;

  constructor(private readonly open: FeedConnector) {
    super();
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
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
        if (this.client !== c || msg.channel !== CHANGE_CHANNEL || !msg.payload) return;
        try {
          this.emit('change', JSON.parse(msg.payload) as CatalogChange);
        } catch {
          /* not ours */
        }
      });
    };
    try {
      client = await this.open(prepare);
      await client.query(`listen ${CHANGE_CHANNEL}`);
    } catch (err) {
      client?.end().catch(() => undefined);
      const first = this.retryMs === FIRST_RETRY_MS && !this.everConnected;
      this.retry();
      if (first) throw err; // start() says why the catalog cannot be reached
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.server = { host: client.host, port: client.port };
    this.connected = true;
    this.everConnected = true;
    this.retryMs = FIRST_RETRY_MS;
    this.emit('connected');
    // Anything may have changed while we were away.
    this.emit('change', { table: '*', op: 'RESYNC' });
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect().catch(() => undefined);
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
