// The catalog's change feed: one LISTEN connection that tells subscribers a table changed.
// It reconnects by itself; while it is down, subscribers keep what they had (fail-static).
import { EventEmitter } from 'node:events';
import pg from 'pg';

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
  private client: pg.Client | null = null;
  private closed = false;
  private retryMs = 100;
  connected = false;

  constructor(private readonly config: pg.ClientConfig) {
    super();
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ ...this.config, application_name: 'pgwarden-change-feed' });
    const lost = (err: Error | null) => {
      if (this.client !== client) return;
      this.client = null;
      this.connected = false;
      this.emit('disconnected', err);
      client.end().catch(() => undefined);
      this.retry();
    };
    client.on('error', (err) => lost(err));
    client.on('end', () => lost(null));
    client.on('notification', (msg) => {
      if (msg.channel !== CHANGE_CHANNEL || !msg.payload) return;
      try {
        this.emit('change', JSON.parse(msg.payload) as CatalogChange);
      } catch {
        /* not ours */
      }
    });
    try {
      await client.connect();
      await client.query(`listen ${CHANGE_CHANNEL}`);
    } catch (err) {
      client.end().catch(() => undefined);
      this.retry();
      if (!this.connected && this.retryMs <= 200) throw err;
      return;
    }
    this.client = client;
    this.connected = true;
    this.retryMs = 100;
    this.emit('connected');
    // Anything may have changed while we were away.
    this.emit('change', { table: '*', op: 'RESYNC' });
  }

  private retry(): void {
    if (this.closed) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, 2_000);
    setTimeout(() => void this.connect().catch(() => undefined), delay).unref();
  }

  async stop(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = null;
    this.connected = false;
    if (c) await c.end().catch(() => undefined);
  }
}
