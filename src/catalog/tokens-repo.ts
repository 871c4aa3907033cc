// API tokens: only their SHA-256 is stored. A token is `pgw_<id>_<secret>`.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';

export type ApiRole = 'Owner' | 'Contributor' | 'Reader' | 'SecurityAdmin';
export const API_ROLES: readonly ApiRole[] = ['Owner', 'Contributor', 'Reader', 'SecurityAdmin'];

export interface ApiTokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: ApiRole;
  readonly createdAt: Date;
  readonly createdBy: string | null;
}

function hash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export class TokensRepo {
  constructor(private readonly db: pg.Pool) {}

  /** Creates a token and returns its clear text, which is never stored. */
  async create(role: ApiRole, name: string, createdBy: string | null): Promise<{ token: string; info: ApiTokenInfo }> {
    const id = randomBytes(6).toString('hex');
    const token = `pgw_${id}_${randomBytes(32).toString('base64url')}`;
    const { rows } = await this.db.query<{ created_at: Date }>(
      'insert into api_tokens (id, name, role, token_hash, created_by) values ($1, $2, $3, $4, $5) returning created_at',
      [id, name, role, hash(token), createdBy],
    );
    return { token, info: { id, name, role, createdAt: rows[0]!.created_at, createdBy } };
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>('select count(*) as n from api_tokens');
    return Number(rows[0]!.n);
  }

  /** Looks the token up by its id and compares the hash in constant time. */
  async authenticate(token: string): Promise<ApiTokenInfo | null> {
    const m = /^pgw_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/.exec(token);
    if (!m) return null;
    const { rows } = await this.db.query<{ id: string; name: string; role: ApiRole; token_hash: Buffer; created_at: Date; created_by: string | null }>(
      'select * from api_tokens where id = $1 and revoked_at is null',
      [m[1]],
    );
    const r = rows[0];
    if (!r || !timingSafeEqual(r.token_hash, hash(token))) return null;
    return { id: r.id, name: r.name, role: r.role, createdAt: r.created_at, createdBy: r.created_by };
  }

  async list(): Promise<ApiTokenInfo[]> {
    const { rows } = await this.db.query<{ id: string; name: string; role: ApiRole; created_at: Date; created_by: string | null }>(
      'select id, name, role, created_at, created_by from api_tokens where revoked_at is null order by created_at',
    );
    return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at, createdBy: r.created_by }));
  }

  async revoke(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query('update api_tokens set revoked_at = now() where id = $1 and revoked_at is null', [id]);
    return (rowCount ?? 0) > 0;
  }
}
