// The catalog of a platform process and the snapshot the gateway decides from. `up` runs the
// embedded catalog (on its own encrypted volume, as its own OS user) or uses --catalog-url, and
// migrates it; a gateway-only process connects to the one its platform runs.
import pg from 'pg';
import type { Registry } from 'prom-client';
import { embeddedCatalogConnection, startEmbeddedCatalog } from '../catalog/embedded.js';
import { migrate } from '../catalog/migrations.js';
import { ChangeFeed } from '../catalog/change-feed.js';
import { SnapshotStore } from '../catalog/snapshot.js';
import { webhookSecretAad } from '../threat/notify/index.js';
import { catalogGauges } from '../services/metrics.js';
import { GiB, platformVolume, type Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export interface CatalogPart extends Part {
  readonly db: pg.Pool;
  /** How the change feed connects (a connection of its own, for LISTEN). */
  readonly connection: pg.ClientConfig;
}

export interface SnapshotPart extends Part {
  readonly feed: ChangeFeed;
  readonly snapshots: SnapshotStore;
}

function pool(connection: pg.PoolConfig): pg.Pool {
  const db = new pg.Pool({ ...connection, max: 10, application_name: 'pgwarden' });
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
    let connection: pg.ClientConfig;
    if (options.catalogUrl) {
      connection = { connectionString: options.catalogUrl };
    } else {
      const account = await host.accounts.catalog();
      const volume = platformVolume(host, 'catalog', host.paths.catalogVolume, account, 4 * GiB);
      await volume.open(true);
      stops.push(() => volume.close());
      const embedded = await startEmbeddedCatalog(host.paths, account);
      stops.push(() => embedded.cluster.stop());
      connection = { ...embedded.connection };
    }
    const db = pool(connection);
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
    return { db, connection, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

/** A gateway-only process: the catalog its platform runs (or --catalog-url), as it is. */
export function connectGatewayCatalog(options: PlatformOptions, host: Host): CatalogPart {
  const connection: pg.ClientConfig = options.catalogUrl ? { connectionString: options.catalogUrl } : { ...embeddedCatalogConnection(host.paths) };
  const db = pool(connection);
  return { db, connection, stop: () => db.end() };
}

/** The change feed and the snapshot it keeps fresh (read once before this returns). */
export async function followCatalog(catalog: CatalogPart, metrics: Registry): Promise<SnapshotPart> {
  const feed = new ChangeFeed(catalog.connection);
  try {
    await feed.start();
    const snapshots = new SnapshotStore(catalog.db, feed);
    await snapshots.load();
    catalogGauges(metrics, () => ({ connected: feed.connected, ageSeconds: (Date.now() - snapshots.snapshot.loadedAt.getTime()) / 1000 }));
    return { feed, snapshots, stop: () => feed.stop() };
  } catch (err) {
    await feed.stop().catch(() => undefined);
    throw err;
  }
}
