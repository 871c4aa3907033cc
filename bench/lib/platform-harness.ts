// A platform for benchmarks: own data dir under /tmp (traversable by the `pgwarden` OS user),
// ephemeral loopback ports, silent logs. Same shape as test/helpers/platform.ts.
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { Platform, defaultOptions, type PlatformOptions, type ClientConfig } from '../../src/app/platform.js';
import { onCleanup } from './cleanup.js';

/** A fresh directory under /tmp that the service account can traverse; removed at cleanup. */
export function benchRoot(prefix: string): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  chmodSync(dir, 0o711);
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function benchOptions(dataDir: string): PlatformOptions {
  // No scheduled backups: a new server's first full backup came at the schedule's first tick, a
  // minute in, and took a fifth off whichever leg ran then (in bench:audit, always audit_off).
  return { ...defaultOptions, dataDir, apiPort: 0, gatewayPort: 0, gatewayHosts: ['127.0.0.1'], logLevel: 'silent', backupIntervalMs: 0 };
}

/** Starts a platform and registers its stop at cleanup; `stop()` on the result unregisters it. */
export async function startPlatform(options: PlatformOptions): Promise<{ platform: Platform; stop: () => Promise<void> }> {
  const platform = new Platform(options);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    await platform.stop();
  };
  const unregister = onCleanup('stop platform', stop);
  try {
    await platform.start();
  } catch (err) {
    await stop();
    throw err;
  }
  return { platform, stop };
}

export function clientConfig(platform: Platform): ClientConfig {
  return JSON.parse(readFileSync(platform.paths.clientConfig, 'utf8')) as ClientConfig;
}

/** One login through the gateway (TLS verified against the platform CA, SNI routing), `select 1`. */
export async function gatewayRoundTrip(opts: { port: number; ca: string; server: string; domain: string; user: string; password: string }): Promise<void> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: opts.port,
    user: opts.user,
    password: opts.password,
    database: 'postgres',
    ssl: { ca: opts.ca, servername: `${opts.server}.${opts.domain}` },
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query('select 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}
