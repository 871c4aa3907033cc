// Encryption at rest in the catalog: each server's key-encryption key (system-managed or an HSM
// key through PKCS#11, its version and last check) and its encrypted volume (backend, size, data
// key wrapped by the KEK). Plaintext keys and HSM PINs are never stored here.
import type pg from 'pg';
import { parseWrappedKey, type WrappedKey } from '../crypto/index.js';
import type { BackendName } from '../storage/volumes/index.js';

export type KeyType = 'SystemManaged' | 'CustomerManaged';
export type KeyStatus = 'Valid' | 'Unavailable';

export interface Pkcs11Reference {
  readonly module: string;
  readonly tokenLabel: string;
  readonly keyLabel: string;
  /** Hex CKA_ID pinned when the key was set, so a same-label impostor is not picked up. */
  readonly keyId: string;
}

export interface ServerKeyRecord {
  readonly serverId: number;
  readonly type: KeyType;
  readonly kekVersion: number;
  readonly pkcs11: Pkcs11Reference | null;
  readonly status: KeyStatus;
  readonly reason: string | null;
  readonly lastValidatedAt: Date | null;
}

export interface VolumeRecord {
  readonly backend: BackendName;
  readonly sizeBytes: number;
  readonly wrappedKey: WrappedKey;
}

interface KeyRow {
  server_id: number;
  type: KeyType;
  kek_version: number;
  pkcs11: Pkcs11Reference | null;
  status: KeyStatus;
  reason: string | null;
  last_validated_at: Date | null;
}

const SYSTEM_DEFAULT = (serverId: number): ServerKeyRecord => ({
  serverId,
  type: 'SystemManaged',
  kekVersion: 1,
  pkcs11: null,
  status: 'Valid',
  reason: null,
  lastValidatedAt: null,
});

function toKey(r: KeyRow): ServerKeyRecord {
  return {
    serverId: r.server_id,
    type: r.type,
    kekVersion: r.kek_version,
    pkcs11: r.pkcs11,
    status: r.status,
    reason: r.reason,
    lastValidatedAt: r.last_validated_at,
  };
}

export class KeysRepo {
  constructor(private readonly db: pg.Pool) {}

  /** The server's key; a server without a row uses the system-managed KEK, version 1. */
  async key(serverId: number): Promise<ServerKeyRecord> {
    const { rows } = await this.db.query<KeyRow>('select * from server_keys where server_id = $1', [serverId]);
    return rows[0] ? toKey(rows[0]) : SYSTEM_DEFAULT(serverId);
  }

  async customerKeys(): Promise<ServerKeyRecord[]> {
    const { rows } = await this.db.query<KeyRow>("select * from server_keys where type = 'CustomerManaged' order by server_id");
    return rows.map(toKey);
  }

  /** Sets the KEK and, in the same transaction, the volume key it now wraps. */
  async setKey(serverId: number, key: Pick<ServerKeyRecord, 'type' | 'kekVersion' | 'pkcs11'>, volumeKey: WrappedKey | null): Promise<void> {
    const client = await this.db.connect();
    try {
      await client.query('begin');
      await client.query(
        `insert into server_keys (server_id, type, kek_version, pkcs11, status, reason, last_validated_at)
         values ($1, $2, $3, $4, 'Valid', null, now())
         on conflict (server_id) do update set type = excluded.type, kek_version = excluded.kek_version, pkcs11 = excluded.pkcs11,
           status = 'Valid', reason = null, last_validated_at = now(), updated_at = now()`,
        [serverId, key.type, key.kekVersion, key.pkcs11 ? JSON.stringify(key.pkcs11) : null],
      );
      if (volumeKey) {
        await client.query('update server_volumes set wrapped_key = $2, rewrapped_at = now() where server_id = $1', [serverId, JSON.stringify(volumeKey)]);
      }
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Rewrites the PKCS#11 reference of a customer key in place (a module path adopted under its configured name). */
  async setPkcs11(serverId: number, pkcs11: Pkcs11Reference): Promise<void> {
    await this.db.query("update server_keys set pkcs11 = $2, updated_at = now() where server_id = $1 and type = 'CustomerManaged'", [
      serverId,
      JSON.stringify(pkcs11),
    ]);
  }

  async setStatus(serverId: number, status: KeyStatus, reason: string | null): Promise<void> {
    await this.db.query(
      `insert into server_keys (server_id, status, reason, last_validated_at) values ($1, $2, $3, case when $2 = 'Valid' then now() end)
       on conflict (server_id) do update set status = $2, reason = $3,
         last_validated_at = case when $2 = 'Valid' then now() else server_keys.last_validated_at end, updated_at = now()`,
      [serverId, status, reason],
    );
  }

  async volume(serverId: number): Promise<VolumeRecord | null> {
    const { rows } = await this.db.query<{ backend: BackendName; size_bytes: string; wrapped_key: unknown }>(
      'select backend, size_bytes, wrapped_key from server_volumes where server_id = $1',
      [serverId],
    );
    const r = rows[0];
    return r ? { backend: r.backend, sizeBytes: Number(r.size_bytes), wrappedKey: parseWrappedKey(r.wrapped_key) } : null;
  }

  async putVolume(serverId: number, v: VolumeRecord): Promise<void> {
    await this.db.query(
      `insert into server_volumes (server_id, backend, size_bytes, wrapped_key) values ($1, $2, $3, $4)
       on conflict (server_id) do update set backend = excluded.backend, size_bytes = excluded.size_bytes, wrapped_key = excluded.wrapped_key`,
      [serverId, v.backend, v.sizeBytes, JSON.stringify(v.wrappedKey)],
    );
  }

  async deleteVolume(serverId: number): Promise<void> {
    await this.db.query('delete from server_volumes where server_id = $1', [serverId]);
  }
}
