// API tokens. A token is `pgw_<id>_<secret>`; the catalog keeps only HMAC-SHA-256(platform key,
// SHA-256(token)), the key being a platform secret on disk (secrets/api-token-hmac.key) that the
// catalog never holds: a row written into api_tokens by someone without the key is no token.
// (HMAC over the SHA-256 lets the catalog migration key the hashes stored before, in place.)
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
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

/** The stored form of a token's plain SHA-256 (what the catalog held before it was keyed). */
export function keyedTokenHash(key: Buffer, sha256: Buffer): Buffer {
  return createHmac('sha256', key).update(sha256).digest();
}

/** Successful authentications remembered for routes that must answer while the catalog is down. */
const REMEMBER_MS = 3600_000;
const REMEMBER_MAX = 1000;

export class TokensRepo {
  private readonly recent = new Map<string, { hash: Buffer; info: ApiTokenInfo; at: number }>();

  constructor(
    private readonly db: pg.Pool,
    private readonly key: Buffer,
  ) {
    if (key.length < 32) throw new RangeError('the API token HMAC key must be at least 32 bytes');
  }

  private hash(token: string): Buffer {
    return keyedTokenHash(this.key, createHash('sha256').update(token).digest());
  }

  /** Creates a token and returns its clear text, which is never stored. */
  async create(role: ApiRole, name: string, createdBy: string | null): Promise<{ token: string; info: ApiTokenInfo }> {
    const id = randomBytes(6).toString('hex');
    const token = `pgw_${id}_${randomBytes(32).toString('base64url')}`;
    const { rows } = await this.db.query<{ created_at: Date }>(
      'insert into api_tokens (id, name, role, token_hash, created_by) values ($1, $2, $3, $4, $5) returning created_at',
      [id, name, role, this.hash(token), createdBy],
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
    const h = this.hash(token);
    if (!r) this.recent.delete(m[1]!); // revoked (maybe by another host): not remembered any more
    if (!r || r.token_hash.length !== h.length || !timingSafeEqual(r.token_hash, h)) return null;
    const info: ApiTokenInfo = { id: r.id, name: r.name, role: r.role, createdAt: r.created_at, createdBy: r.created_by };
    this.recent.delete(r.id);
    this.recent.set(r.id, { hash: h, info, at: Date.now() });
    if (this.recent.size > REMEMBER_MAX) this.recent.delete(this.recent.keys().next().value!);
    return info;
  }

  /** A token that authenticated against the catalog within the last hour, for a route that must
   * answer while the catalog cannot be reached (metrics show fail-static). Never for changes. */
  rememberedWhileCatalogDown(token: string): ApiTokenInfo | null {
    const m = /^pgw_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/.exec(token);
    const r = m ? this.recent.get(m[1]!) : undefined;
    if (!r || Date.now() - r.at > REMEMBER_MS) return null;
    const h = this.hash(token);
    return timingSafeEqual(r.hash, h) ? r.info : null;
  }

  async list(): Promise<ApiTokenInfo[]> {
    const { rows } = await this.db.query<{ id: string; name: string; role: ApiRole; created_at: Date; created_by: string | null }>(
      'select id, name, role, created_at, created_by from api_tokens where revoked_at is null order by created_at',
    );
    return rows.map((r) => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at, createdBy: r.created_by }));
  }

  async revoke(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query('update api_tokens set revoked_at = now() where id = $1 and revoked_at is null', [id]);
    this.recent.delete(id);
    return (rowCount ?? 0) > 0;
  }
}
