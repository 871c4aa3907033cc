// The catalog of a platform process and the snapshot the gateway decides from. `up` runs the
// embedded catalog (on its own encrypted volume, as its own OS user) or uses --catalog-url, and
// migrates it; a gateway-only process connects to the one its platform runs. A --catalog-url
// may name several hosts (a catalog cluster): connections go to the one target_session_attrs
// asks for, and after a failover to the new primary (catalog/catalog-hosts.ts).
import pg from 'pg';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { embeddedCatalogConnection, startEmbeddedCatalog } from '../catalog/embedded.js';
import { migrate } from '../catalog/migrations.js';
import { ChangeFeed } from '../catalog/change-feed.js';
import { SnapshotStore } from '../catalog/snapshot.js';
import { parseCatalogUrl, hostLabel } from '../catalog/catalog-url.js';
import { CatalogHosts, specFromConfig, specFromUrl } from '../catalog/catalog-hosts.js';
import { now, type EventBus } from '../events/bus.js';
import { webhookSecretAad } from '../threat/notify/index.js';
import { catalogGauges } from '../services/metrics.js';
import { GiB, platformVolume, type Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export interface CatalogPart extends Part {
  readonly db: pg.Pool;
  /** The catalog's hosts and the one connections go to (the change feed's LISTEN too). */
  readonly hosts: CatalogHosts;
}

export interface SnapshotPart extends Part {
  readonly feed: ChangeFeed;
  readonly snapshots: SnapshotStore;
}

/** The hosts of --catalog-url (a bad URL stops the process with libpq-like words). */
function catalogHosts(url: string): CatalogHosts {
  return new CatalogHosts(specFromUrl(parseCatalogUrl(url)));
}

function pool(hosts: CatalogHosts): pg.Pool {
  // Host and port are set per connection by the client class; the first host stands in here.
  const db = new pg.Pool({ ...hosts.configFor(hosts.spec.hosts[0]!), application_name: 'pgwarden', max: 10, Client: hosts.clientClass() });
  db.on('error', () => undefined); // a dropped idle connection is not fatal: the next query reconnects
  return db;
}

/** `up`: the embedded catalog (or the one at --catalog-url), migrated to this version. */
export async function startPlatformCatalog(options: PlatformOptions, host: Host): Promise<CatalogPart> {
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    // Every step, even after one failed; the volume last (PostgreSQL PANICs when its key goes first).
    let failure: unknown = null;
    for (const step of stops.reverse()) await step().catch((err: unknown) => (failure ??= err));
    stops.length = 0;
    if (failure) throw failure;
  };
  try {
    let hosts: CatalogHosts;
    if (options.catalogUrl) {
      hosts = catalogHosts(options.catalogUrl);
    } else {
      const account = await host.accounts.catalog();
      const volume = platformVolume(host, 'catalog', host.paths.catalogVolume, account, 4 * GiB);
      await volume.open(true);
      stops.push(() => volume.close());
      const embedded = await startEmbeddedCatalog(host.paths, account);
      stops.push(() => embedded.cluster.stop());
      hosts = new CatalogHosts(specFromConfig({ ...embedded.connection }));
    }
    const db = pool(hosts);
    stops.push(() => db.end());
    const client = await db.connect();
    try {
      await migrate(client, {
        tokenHashKey: host.tokenHashKey,
        sealWebhookSecret: (secret, server, url) => host.webhookSecrets.seal(secret, webhookSecretAad(server, url)),
      });
    } finally {
      client.release();
    }
    return { db, hosts, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** A gateway-only process: the catalog its platform runs (or --catalog-url), as it is. */
export function connectGatewayCatalog(options: PlatformOptions, host: Host): CatalogPart {
  const hosts = options.catalogUrl ? catalogHosts(options.catalogUrl) : new CatalogHosts(specFromConfig({ ...embeddedCatalogConnection(host.paths) }));
  const db = pool(hosts);
  return { db, hosts, stop: () => db.end() };
}

/** Where the catalog's connection state is told: the log and the event bus (the audit log). */
export interface CatalogNotices {
  readonly bus: EventBus;
  readonly log: Logger;
}

/** catalog.disconnected once when the feed loses the catalog, catalog.reconnected when it is back. */
function reportConnection(feed: ChangeFeed, hosts: CatalogHosts, notices: CatalogNotices): void {
  let downSince: number | null = null;
  let lostHost: string | null = null;
  feed.on('disconnected', (err) => {
    if (downSince !== null) return;
    downSince = Date.now();
    lostHost = feed.server ? hostLabel(feed.server) : null;
    // The next connections look at every host again (the lost one may be a demoted primary).
    hosts.forget();
    const error = err?.message ?? 'the connection ended';
    notices.log.warn({ host: lostHost, err: error }, 'catalog connection lost: serving on the last snapshot');
    notices.bus.publish({ type: 'catalog.disconnected', time: now(), host: lostHost, error });
  });
  feed.on('connected', () => {
    if (downSince === null) return;
    const downSeconds = (Date.now() - downSince) / 1000;
    downSince = null;
    const back = feed.server ? hostLabel(feed.server) : null;
    notices.log.warn({ host: back, was: lostHost, downSeconds }, 'catalog connection back: re-reading the snapshot');
    notices.bus.publish({ type: 'catalog.reconnected', time: now(), host: back, downSeconds });
  });
}

/** The change feed and the snapshot it keeps fresh (read once before this returns). */
export async function followCatalog(catalog: CatalogPart, metrics: Registry, notices?: CatalogNotices): Promise<SnapshotPart> {
  const { hosts } = catalog;
  const feed = new ChangeFeed((prepare) => hosts.connect({ application_name: 'pgwarden-change-feed' }, prepare));
  try {
    await feed.start();
    if (notices) reportConnection(feed, hosts, notices);
    const snapshots = new SnapshotStore(catalog.db, feed);
    snapshots.on('error', (err) => notices?.log.warn({ err: err.message }, 'catalog snapshot re-read failed: serving on the last one, trying again'));
    await snapshots.load();
    catalogGauges(metrics, () => ({ connected: feed.connected, ageSeconds: (Date.now() - snapshots.snapshot.loadedAt.getTime()) / 1000 }));
    const stop = async () => {
      snapshots.close();
      await feed.stop();
    };
    return { feed, snapshots, stop };
  } catch (err) {
    await feed.stop().catch(() => undefined);
    throw err;
  }
}
