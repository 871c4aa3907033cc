// What the network repositories share: a transaction, and the server row a rule hangs on.
import type pg from 'pg';
import type { Toggle } from './servers-repo.js';

/** A pool or a client inside a transaction: repositories work on either. */
export type Queryable = pg.Pool | pg.ClientBase;

export async function inTransaction<T>(db: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

export interface ServerRef {
  readonly id: number;
  readonly name: string;
  readonly publicNetworkAccess: Toggle;
}

/**
 * The server's id and public access switch. With `lock`, the row is held FOR SHARE until the
 * transaction ends, so a concurrent switch of publicNetworkAccess waits for this change.
 */
export async function findServer(db: Queryable, name: string, lock = false): Promise<ServerRef | null> {
  const { rows } = await db.query<{ id: number; name: string; public_network_access: Toggle }>(
    `select id, name, public_network_access from servers where name = $1${lock ? ' for share' : ''}`,
    [name],
  );
  const r = rows[0];
  return r ? { id: r.id, name: r.name, publicNetworkAccess: r.public_network_access } : null;
}

/** True when err is PostgreSQL's unique_violation (optionally on the named constraint). */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
