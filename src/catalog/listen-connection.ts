// One LISTEN connection to the catalog on one channel, kept open: it reconnects by itself (to
// whichever catalog host takes the session now: after a failover, the new primary), with backoff
// capped at a few seconds. Notifications sent while it is away are lost with the connection, so
// each (re)connection is announced: its owner re-reads or asks again. The change feed and the
// gateway tier's channel are two owners of one of these each.
import { EventEmitter } from 'node:events';
import type pg from 'pg';

/** Opens a connected client; `prepare` attaches listeners before it connects. */
export type FeedConnector = (prepare: (client: pg.Client) => void) => Promise<pg.Client>;

export interface ListenEvents {
  /** A notification's payload on the channel (never empty). */
  payload: [text: string];
  connected: [];
  disconnected: [error: Error | null];
}

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;

export class ListenConnection extends EventEmitter<ListenEvents> {
  private client: pg.Client | null = null;
  private closed = false;
  private retryMs = FIRST_RETRY_MS;
  private timer: NodeJS.Timeout | null = null;
  connected = false;
  /** The host it is (or was last) connected to: after a failover, the new primary. */
  server: { readonly host: string; readonly port: number } | null = null;

  constructor(
    private readonly open: FeedConnector,
    private readonly channel: string,
  ) {
    super();
  }

  /** Connects; throws when the first attempt fails (the caller says why the catalog cannot be
   * reached), and keeps trying meanwhile. */
  async start(): Promise<void> {
    await this.connect(true);
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
        if (this.client !== c || msg.channel !== this.channel || !msg.payload) return;
        this.emit('payload', msg.payload);
      });
    };
    try {
      client = await this.open(prepare);
      await client.query(`listen ${this.channel}`);
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
    this.server = { host: client.host, port: client.port };
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
