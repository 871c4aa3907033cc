// Which role a node of an attached server plays now: a login as the maintenance user over TLS
// (verify-full), then `pg_is_in_recovery()`, as libpq's target_session_attrs=read-write decides.
// The login is also how pgwarden learns the maintenance user is not a superuser (it must read
// pg_authid), so attaching fails early and clearly.
import pg from 'pg';
import type { Endpoint } from './endpoints.js';

export interface NodeCredentials {
  readonly ca: string;
  readonly user: string;
  readonly password: string;
}

export interface NodeState {
  readonly writable: boolean;
  readonly superuser: boolean;
}

export type NodeProbe = (endpoint: Endpoint, c: NodeCredentials) => Promise<NodeState>;

/** pg's TLS options for a node: the CA, and the endpoint's host checked against the certificate. */
export function nodeSsl(endpoint: Endpoint, ca: string): pg.ClientConfig['ssl'] {
  return { ca, host: endpoint.host, rejectUnauthorized: true, minVersion: 'TLSv1.2' } as pg.ClientConfig['ssl'];
}

export const probeNode: NodeProbe = async (endpoint, c) => {
  const client = new pg.Client({
    host: endpoint.host,
    port: endpoint.port,
    user: c.user,
    password: c.password,
    database: 'postgres',
    ssl: nodeSsl(endpoint, c.ca),
    application_name: 'pgwarden-maintenance',
    connectionTimeoutMillis: 3_000,
  });
  client.on('error', () => undefined); // a node dying under the probe: the query reports it
  try {
    await client.connect();
    const { rows } = await client.query<{ recovery: boolean; superuser: boolean }>(
      'select pg_is_in_recovery() as recovery, (select rolsuper from pg_roles where rolname = current_user) as superuser',
    );
    return { writable: rows[0]?.recovery === false, superuser: rows[0]?.superuser === true };
  } finally {
    await client.end().catch(() => undefined);
  }
};
