// The in-memory view of the catalog that the gateway decides from: never per-connection I/O.
// Reloaded on every change notification (coalesced); kept as it is while the catalog is down.
// A reload that fails while the feed is up (the pool met the old primary during a failover) is
// tried again with backoff: the feed's RESYNC after a reconnection is its only notice, so a
// failed re-read must not wait for the next change to be retried.
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { ChangeFeed } from './change-feed.js';
import { ServersRepo, type ServerRecord } from './servers-repo.js';
import { loadNetworkState } from '../network/state.js';
import { loadIdentityState, type ServerIdentity } from './identity-state.js';
import { AuditSettingsRepo } from './audit-settings-repo.js';
import type { AuditSettings } from '../audit/settings.js';
import { ThreatRepo } from './threat-repo.js';
import type { SecurityAlertPolicy } from '../threat/policy.js';
import type { NetworkView } from '../network/state.js';

export interface CatalogSnapshot {
  readonly servers: ReadonlyMap<string, ServerRecord>;
  /** Firewall rules, VNet rules, private endpoints and virtual networks, ready to decide from. */
  readonly network: NetworkView;
  /** Token-login administrators and principals, by server name. */
  readonly identity: ReadonlyMap<string, ServerIdentity>;
  /** Statement audit settings, by server name. */
  readonly audit: ReadonlyMap<string, AuditSettings>;
  /** Security alert policies (threat protection), by server name. */
  readonly threat: ReadonlyMap<string, SecurityAlertPolicy>;
  /** When this snapshot was read from the catalog. */
  readonly loadedAt: Date;
  readonly version: number;
}

const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 2_000;

export class SnapshotStore extends EventEmitter<{ updated: [CatalogSnapshot]; error: [Error] }> {
  private current: CatalogSnapshot = {
    servers: new Map(),
    network: { servers: new Map(), vnets: new Map() },
    identity: new Map(),
    audit: new Map(),
    threat: new Map(),
    loadedAt: new Date(0),
    version: 0,
  };
  private reloading: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_FIRST_MS;
  private closed = false;
  private readonly repo: ServersRepo;
  lastError: Error | null = null;

  constructor(
    private readonly db: pg.Pool,
    private readonly feed: ChangeFeed,
  ) {
    super();
    this.repo = new ServersRepo(db);
    feed.on('change', () => this.requestReload());
  }

  get snapshot(): CatalogSnapshot {
    return this.current;
  }

  /** True when the feed is down: decisions are being made on the last snapshot. */
  get stale(): boolean {
    return !this.feed.connected || this.lastError !== null;
  }

  async load(): Promise<void> {
    const [servers, network, identity, audit, threat] = await Promise.all([
      this.repo.list(),
      loadNetworkState(this.db),
      loadIdentityState(this.db),
      new AuditSettingsRepo(this.db).all(),
      new ThreatRepo(this.db).allPolicies(),
    ]);
    this.current = {
      servers: new Map(servers.map((s) => [s.name, s])),
      network,
      identity,
      audit,
      threat,
      loadedAt: new Date(),
      version: this.current.version + 1,
    };
    this.lastError = null;
    this.emit('updated', this.current);
  }

  /** Coalesces bursts of notifications into at most one reload in flight plus one queued. */
  requestReload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        try {
          await this.load();
          this.retryMs = RETRY_FIRST_MS;
        } catch (err) {
          this.lastError = err as Error;
          // 'error' without a listener would throw out of this loop and leave it stuck.
          if (this.listenerCount('error') > 0) this.emit('error', err as Error);
        }
      } while (this.again);
      this.reloading = null;
      if (this.lastError) this.retryLater();
    })();
    return this.reloading;
  }

  /** Tries a failed reload again while the feed is up (when it is down, its reconnection will). */
  private retryLater(): void {
    if (this.closed || this.retryTimer || !this.feed.connected) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.lastError && this.feed.connected) void this.requestReload();
    }, delay);
    this.retryTimer.unref();
  }

  /** No more retries (the process is stopping). */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}
