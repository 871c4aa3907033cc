// What `server attach` checks before the catalog holds an attached server: a node that accepts
// writes, reached over TLS verify-full with the maintenance login, and that login a superuser
// (it reads role verifiers from pg_authid). With an administrator password, the administrator
// role is created (or its password set) there, as `server create` does on a managed server.
import pg from 'pg';
import { buildScramVerifier } from '../../auth/scram/verifier.js';
import { ADMIN_GROUP_ROLE, adminGroupStatements, ident, literal } from '../roles.js';
import { endpointText, type Endpoint } from './endpoints.js';
import { nodeSsl, probeNode, type NodeCredentials, type NodeProbe } from './probe.js';

export async function checkAttachable(
  endpoints: readonly Endpoint[],
  c: NodeCredentials,
  admin: { login: string; password?: string },
  probe: NodeProbe = probeNode,
): Promise<void> {
  const results = await Promise.allSettled(endpoints.map((e) => probe(e, c)));
  const i = results.findIndex((r) => r.status === 'fulfilled' && r.value.writable);
  if (i < 0) {
    const why = results.map((r, k) => `${endpointText(endpoints[k]!)}: ${r.status === 'fulfilled' ? 'read-only (standby)' : (r.reason as Error).message}`);
    throw new Error(`no endpoint accepts writes (${why.join('; ')})`);
  }
  const state = (results[i] as PromiseFulfilledResult<{ superuser: boolean }>).value;
  if (!state.superuser) throw new Error(`maintenance user '${c.user}' is not a superuser: pgwarden reads role verifiers from pg_authid with it`);
  if (admin.password === undefined) return;
  const primary = endpoints[i]!;
  const client = new pg.Client({
    host: primary.host,
    port: primary.port,
    user: c.user,
    password: c.password,
    database: 'postgres',
    ssl: nodeSsl(primary, c.ca),
    application_name: 'pgwarden-maintenance',
    connectionTimeoutMillis: 5_000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const verifier = literal(buildScramVerifier(admin.password));
    // The administrators' group, as `server create` makes it on a managed server.
    const group = await client.query('select 1 from pg_roles where rolname = $1', [ADMIN_GROUP_ROLE]);
    if (!group.rowCount) for (const q of adminGroupStatements()) await client.query(q);
    const { rowCount } = await client.query('select 1 from pg_roles where rolname = $1', [admin.login]);
    await client.query(
      rowCount
        ? `alter role ${ident(admin.login)} login password ${verifier}`
        : `create role ${ident(admin.login)} login createdb createrole nosuperuser noreplication nobypassrls in role ${ident(ADMIN_GROUP_ROLE)} password ${verifier}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
