// The embedded catalog: a PostgreSQL cluster the platform runs for itself inside its data dir,
// reached only over its Unix socket with a SCRAM password only the platform can read. It runs
// as an OS user of its own (not any managed server's): its files, socket and pg_hba.conf are
// out of reach of code running inside a managed server.
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { Cluster } from '../engine/cluster.js';
import { adoptTree } from '../host/ownership.js';
import type { OsAccount } from '../host/os-user.js';
import type { PlatformPaths } from '../host/paths.js';
import { loadOrCreateSecret } from '../host/secrets.js';

export const CATALOG_SUPERUSER = 'pgwarden_catalog';

export interface CatalogConnection {
  readonly host: string;
  readonly port?: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

/** How another process on this host reaches the embedded catalog of a running platform. */
export function embeddedCatalogConnection(paths: PlatformPaths): CatalogConnection {
  const file = path.join(paths.secretsDir, 'catalog.password');
  if (!existsSync(file)) throw new Error(`No embedded catalog in ${paths.root}: start the platform with 'pgwarden up' first.`);
  return { host: paths.catalogSocketDir(), user: CATALOG_SUPERUSER, password: readFileSync(file, 'utf8').trim(), database: 'postgres' };
}

export async function startEmbeddedCatalog(paths: PlatformPaths, account: OsAccount): Promise<{ cluster: Cluster; connection: CatalogConnection }> {
  const password = loadOrCreateSecret(path.join(paths.secretsDir, 'catalog.password'));
  // A catalog made when it ran as another OS user (the one account servers shared) becomes its own user's.
  const volumeDir = path.dirname(paths.catalogData);
  if (existsSync(volumeDir)) adoptTree(volumeDir, account);
  const cluster = new Cluster({
    dataDir: paths.catalogData,
    socketDir: paths.catalogSocketDir(),
    account,
    settings: { max_connections: 50 },
  });
  if (!cluster.initialized) await cluster.init(CATALOG_SUPERUSER, password);
  else cluster.writeConfig();
  await cluster.start();
  return {
    cluster,
    connection: { host: cluster.socketDir, user: CATALOG_SUPERUSER, password, database: 'postgres' },
  };
}
