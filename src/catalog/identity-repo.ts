// Token-login identities in the catalog: one identity administrator per server, and the
// principals (database roles bound to identities by immutable object id).
import type pg from 'pg';
import type { PrincipalType } from '../auth/identity.js';

export type { PrincipalType } from '../auth/identity.js';

export interface IdentityAdmin {
  readonly serverId: number;
  readonly issuer: string;
  readonly audience: string;
  readonly login: string;
  readonly objectId: string;
  readonly type: PrincipalType;
  readonly objectIdClaim: string;
  readonly caBundle: string | null;
  readonly updatedAt: Date;
}

export interface IdentityPrincipal {
  readonly serverId: number;
  readonly role: string;
  readonly objectId: string;
  readonly type: PrincipalType;
  readonly createdAt: Date;
}

interface AdminRow {
  server_id: number;
  issuer: string;
  audience: string;
  login: string;
  object_id: string;
  principal_type: PrincipalType;
  object_id_claim: string;
  ca_bundle: string | null;
  updated_at: Date;
}
interface PrincipalRow {
  server_id: number;
  role: string;
  object_id: string;
  principal_type: PrincipalType;
  created_at: Date;
}

const admin = (r: AdminRow): IdentityAdmin => ({
  serverId: r.server_id,
  issuer: r.issuer,
  audience: r.audience,
  login: r.login,
  objectId: r.object_id,
  type: r.principal_type,
  objectIdClaim: r.object_id_claim,
  caBundle: r.ca_bundle,
  updatedAt: r.updated_at,
});
const principal = (r: PrincipalRow): IdentityPrincipal => ({
  serverId: r.server_id,
  role: r.role,
  objectId: r.object_id,
  type: r.principal_type,
  createdAt: r.created_at,
});

export class IdentityRepo {
  constructor(private readonly db: pg.Pool) {}

  async admin(serverId: number): Promise<IdentityAdmin | null> {
    const { rows } = await this.db.query<AdminRow>('select * from identity_admins where server_id = $1', [serverId]);
    return rows[0] ? admin(rows[0]) : null;
  }

  async allAdmins(): Promise<IdentityAdmin[]> {
    return (await this.db.query<AdminRow>('select * from identity_admins')).rows.map(admin);
  }

  async setAdmin(a: Omit<IdentityAdmin, 'updatedAt'>): Promise<IdentityAdmin> {
    const { rows } = await this.db.query<AdminRow>(
      `insert into identity_admins (server_id, issuer, audience, login, object_id, principal_type, object_id_claim, ca_bundle)
       values ($1, $2, $3, $4, $5, $6, $7, $8)
       on conflict (server_id) do update set issuer = excluded.issuer, audience = excluded.audience, login = excluded.login,
         object_id = excluded.object_id, principal_type = excluded.principal_type, object_id_claim = excluded.object_id_claim,
         ca_bundle = excluded.ca_bundle, updated_at = now()
       returning *`,
      [a.serverId, a.issuer, a.audience, a.login, a.objectId, a.type, a.objectIdClaim, a.caBundle],
    );
    return admin(rows[0]!);
  }

  async deleteAdmin(serverId: number): Promise<boolean> {
    return ((await this.db.query('delete from identity_admins where server_id = $1', [serverId])).rowCount ?? 0) > 0;
  }

  async principals(serverId: number): Promise<IdentityPrincipal[]> {
    const { rows } = await this.db.query<PrincipalRow>('select * from identity_principals where server_id = $1 order by role', [serverId]);
    return rows.map(principal);
  }

  async allPrincipals(): Promise<IdentityPrincipal[]> {
    return (await this.db.query<PrincipalRow>('select * from identity_principals')).rows.map(principal);
  }

  /** Null when the role or the identity is already bound on this server. */
  async addPrincipal(p: Omit<IdentityPrincipal, 'createdAt'>): Promise<IdentityPrincipal | null> {
    const { rows } = await this.db.query<PrincipalRow>(
      `insert into identity_principals (server_id, role, object_id, principal_type) values ($1, $2, $3, $4)
       on conflict do nothing returning *`,
      [p.serverId, p.role, p.objectId, p.type],
    );
    return rows[0] ? principal(rows[0]) : null;
  }

  async deletePrincipal(serverId: number, role: string): Promise<boolean> {
    return ((await this.db.query('delete from identity_principals where server_id = $1 and role = $2', [serverId, role])).rowCount ?? 0) > 0;
  }
}
