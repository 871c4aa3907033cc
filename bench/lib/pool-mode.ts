// A server's pool mode for a bench, through the REST API as `pgwarden server update NAME
// --pool-mode M --pool-size N` does it: PATCH /servers/{name} {poolMode, poolSize}. A platform
// whose API does not know the fields answers 400 (the body schema allows no other properties):
// then the caller runs without pooling and says so.
import { ApiError, callApi, type ApiTarget } from '../../src/cli/api-client.js';

export type BenchPoolMode = 'none' | 'session' | 'transaction';

/** Null once the mode is set; otherwise why it could not be. */
export async function setPoolMode(api: ApiTarget, server: string, mode: BenchPoolMode, poolSize?: number): Promise<string | null> {
  const body: Record<string, unknown> = { poolMode: mode };
  if (poolSize !== undefined) body.poolSize = poolSize;
  try {
    const got = await callApi<{ poolMode?: string; poolSize?: number }>(api, 'PATCH', `/servers/${encodeURIComponent(server)}`, body);
    if (got.poolMode !== undefined && got.poolMode !== mode) return `the API answered poolMode ${got.poolMode}, not ${mode}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) return `the API refused ${JSON.stringify(body)} (400 ${err.code}: ${err.message})`;
    throw err;
  }
  // The gateway reads the server's settings from its catalog snapshot at each session start; the
  // snapshot follows a catalog change within a moment.
  await new Promise((r) => setTimeout(r, 1000));
  return null;
}

/** The server's pools (GET /servers/{name}/pool, as `pgwarden server pool show NAME`), one
 * line per pool; null when the API has no such route yet. */
export async function poolSummary(api: ApiTarget, server: string): Promise<string | null> {
  let got: unknown;
  try {
    got = await callApi<unknown>(api, 'GET', `/servers/${encodeURIComponent(server)}/pool`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) return null;
    throw err;
  }
  // The rows are PoolStats (gateway/pool/types.ts), as an array or under a property.
  const rows = Array.isArray(got) ? got : (Object.values(got as object).find(Array.isArray) ?? [got]);
  const keys = ['mode', 'user', 'database', 'clients', 'waiting', 'active', 'idle', 'opening', 'poolSize', 'waits', 'waitMs', 'opened', 'reused'];
  return (rows as Record<string, unknown>[])
    .map((r) =>
      keys
        .filter((k) => r[k] !== undefined)
        .map((k) => `${k}=${String(r[k])}`)
        .join(' '),
    )
    .join('\n');
}
