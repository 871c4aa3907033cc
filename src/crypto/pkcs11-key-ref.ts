// How a customer-managed KEK in an HSM is named (token, label, CKA_ID, PIN source), its RFC 7512
// style reference, and the one error text for a key that cannot be used. Shared by the provider
// (pkcs11-kek.ts) and key creation (pkcs11-create-key.ts).
import { KeyUnavailableError } from './key-errors.js';
import { Pkcs11Problem, ckr, ckrName, type PinSource } from './pkcs11-module.js';

export interface Pkcs11KeyReference {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly keyLabel: string;
  /** Hex CKA_ID: pins one key object when several share a label. Resolved and pinned at open when absent. */
  readonly keyId?: string;
  /** The user PIN's source; never the PIN itself. */
  readonly pin: PinSource;
  /** KEK version (default 1); rotation makes version + 1. */
  readonly version?: number;
  /** OAEP hash for RSA keys: 'sha256' (default) or 'sha1' for HSMs without SHA-256 OAEP (SoftHSM 2.6). */
  readonly rsaOaepHash?: 'sha256' | 'sha1';
}

export type Pkcs11KeyType = 'aes-256' | 'rsa-2048' | 'rsa-3072' | 'rsa-4096';

/** The RFC 7512 style reference of a key object (what `keyRef` holds). */
export function pkcs11Uri(token: string, label: string, id: Buffer): string {
  const pct = (s: string): string => encodeURIComponent(s).replace(/[;?]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `pkcs11:token=${pct(token)};object=${pct(label)};id=${[...id].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')}`;
}

/** A key that cannot be used, said the same way for every operation. */
export function unavailable(ref: Pkcs11KeyReference, err: unknown): KeyUnavailableError {
  const reason = err instanceof Pkcs11Problem ? err.message : `cannot be used (${err instanceof Error ? err.message : String(err)}; ${ckrName(ckr(err))})`;
  return new KeyUnavailableError(`Customer key '${ref.keyLabel}' ${reason} (PKCS#11 module ${ref.modulePath}).`);
}
