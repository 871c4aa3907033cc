// Token-login identities of every server, as the gateway decides from them.
import type pg from 'pg';
import type { PrincipalType, PrincipalView, ServerIdentity } from '../auth/identity.js';

// The domain types live in auth/identity.ts; re-exported for this module's users.
export type { IdentityAdminView, PrincipalView, ServerIdentity } from '../auth/identity.js';

export async function loadIdentityState(db: pg.Pool): Promise<Map<string, ServerIdentity>> {
  const { rows } = await db.query<{
    server: string;
    admin: {
      issuer: string;
      audience: string;
      object_id_claim: string;
      ca_bundle: string | null;
      login: string;
      object_id: string;
      principal_type: PrincipalType;
    } | null;
    principals: { role: string; object_id: string; principal_type: PrincipalType }[] | null;
  }>(
    `select s.name as server,
            (select row_to_json(a) from identity_admins a where a.server_id = s.id) as admin,
            (select json_agg(p) from identity_principals p where p.server_id = s.id) as principals
       from servers s
      where exists (select 1 from identity_admins a where a.server_id = s.id)
         or exists (select 1 from identity_principals p where p.server_id = s.id)`,
  );
  const out = new Map<string, ServerIdentity>();
  for (const r of rows) {
    const principals = new Map<string, PrincipalView>();
    for (const p of r.principals ?? []) principals.set(p.role, { objectId: p.object_id, type: p.principal_type });
    if (r.admin) principals.set(r.admin.login, { objectId: r.admin.object_id, type: r.admin.principal_type });
    out.set(r.server, {
      admin: r.admin
        ? { issuer: r.admin.issuer, audience: r.admin.audience, objectIdClaim: r.admin.object_id_claim, caBundle: r.admin.ca_bundle, login: r.admin.login }
        : null,
      principals,
    });
  }
  return out;
}
