// Key-encryption keys (KEKs): the provider interface every KEK source implements (system-managed
// in system-kek.ts, customer-managed in an HSM in pkcs11-kek.ts), the wrapped-key record the catalog
// stores, and the aad that binds a wrapped key to its purpose.
import { KeyIntegrityError } from './key-errors.js';

export interface WrappedKey {
  readonly provider: 'system' | 'pkcs11';
  readonly kekVersion: number;
  /** Which KEK wrapped it: `system:server/<id>` or `pkcs11:token=..;object=..;id=..` (RFC 7512 style). */
  readonly keyRef: string;
  /** base64 of the provider's blob. */
  readonly blob: string;
}

export type KekStatus = { readonly ok: true; readonly checkedAt: string } | { readonly ok: false; readonly checkedAt: string; readonly reason: string };

export interface KekProvider {
  readonly kind: 'system' | 'customer';
  readonly version: number;
  /** What the API shows: kind, key reference, version; never secrets. */
  describe(): Record<string, unknown>;
  wrap(dataKey: Buffer, aad: Buffer): Promise<WrappedKey>;
  /** Throws KeyUnavailableError (key gone, disabled, HSM refuses) or KeyIntegrityError (blob or aad altered). */
  unwrap(wrapped: WrappedKey, aad: Buffer): Promise<Buffer>;
  /** Is the key present and usable right now; cheap enough for a periodic check. Never throws. */
  check(): Promise<KekStatus>;
  close(): Promise<void>;
}

export type KeyPurpose = 'volume' | 'backup' | 'wal' | 'audit';

/** The aad of a server's data key: `server:<id>:<purpose>`. A blob wrapped for one server and purpose unwraps for no other. */
export function serverKeyAad(serverId: string, purpose: KeyPurpose): Buffer {
  if (serverId.length === 0 || serverId.includes(':')) throw new RangeError('a server id for key aad must be non-empty and hold no ":"');
  return Buffer.from(`server:${serverId}:${purpose}`, 'utf8');
}

/** Validates a wrapped key read back from the catalog (JSON). Throws KeyIntegrityError when malformed. */
export function parseWrappedKey(value: unknown): WrappedKey {
  const v = typeof value === 'string' ? safeJson(value) : value;
  if (typeof v !== 'object' || v === null) throw new KeyIntegrityError('the wrapped key record is not an object');
  const r = v as Record<string, unknown>;
  if (r.provider !== 'system' && r.provider !== 'pkcs11') throw new KeyIntegrityError('the wrapped key record has an unknown provider');
  if (typeof r.kekVersion !== 'number' || !Number.isSafeInteger(r.kekVersion) || r.kekVersion < 1)
    throw new KeyIntegrityError('the wrapped key record has an invalid kekVersion');
  if (typeof r.keyRef !== 'string' || r.keyRef.length === 0 || r.keyRef.length > 1024)
    throw new KeyIntegrityError('the wrapped key record has an invalid keyRef');
  if (typeof r.blob !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(r.blob) || r.blob.length > 4096)
    throw new KeyIntegrityError('the wrapped key record has an invalid blob');
  return { provider: r.provider, kekVersion: r.kekVersion, keyRef: r.keyRef, blob: r.blob };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new KeyIntegrityError('the wrapped key record is not valid JSON');
  }
}

export function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError(`a KEK version is an integer ≥ 1, got ${version}`);
}

export function checkDataKey(dataKey: Buffer): void {
  if (!Buffer.isBuffer(dataKey) || (dataKey.length !== 32 && dataKey.length !== 64)) throw new RangeError('a data key is a 32- or 64-byte Buffer');
}

export function now(): string {
  return new Date().toISOString();
}
