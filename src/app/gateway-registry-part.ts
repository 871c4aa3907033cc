// A gateway process in the catalog's gateway registry: its row written at start (its stream's
// name, API URL, audit public key, host id) and `last_seen` refreshed every 10 s, so the platform
// can find its audit stream wherever it runs. A gateway that cannot register does not start: a
// stream the platform cannot find would be an audit log nobody verifies.
import type { Logger } from 'pino';
import type { GatewaysRepo } from '../catalog/gateways-repo.js';
import type { Part } from './parts.js';

const REFRESH_MS = 10_000;

export async function registerGateway(
  repo: GatewaysRepo,
  entry: { name: string; apiUrl: string; auditPublicKey: string; hostId: string },
  log: Logger,
): Promise<Part> {
  try {
    await repo.register(entry);
  } catch (err) {
    throw new Error(`could not register gateway '${entry.name}' in the catalog's gateway registry: ${(err as Error).message}`);
  }
  // A missed refresh (catalog down: fail-static) is logged; the next one catches up.
  const timer = setInterval(() => {
    repo.touch(entry.name).catch((err: Error) => log.warn({ gateway: entry.name, err: err.message }, 'gateway registry: last_seen not refreshed'));
  }, REFRESH_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
