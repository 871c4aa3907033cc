// Secrets the platform keeps on disk: random, 0600, owned by the platform's own account; and
// the sealing of small secrets the catalog holds (SecretSealer).
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';

export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Reads the secret in `file`, creating it (0600) with a new random value when missing. */
export function loadOrCreateSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const value = randomSecret();
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return value;
}

export function writeSecretFile(file: string, value: string | Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, value, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Reads a binary key file (0600, at least 32 bytes), creating it with 32 random bytes when
 * missing; refuses one that group or others can reach. */
export function loadOrCreateKeyFile(file: string): Buffer {
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(file, randomBytes(32), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0)
    throw new Error(
      `Refusing the key file ${file}: it is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it and check who may have read it.`,
    );
  const key = readFileSync(file);
  if (key.length < 32) throw new Error(`The key file ${file} holds ${key.length} bytes, fewer than 32.`);
  return key;
}

const SEALED = 'sealed:v1:';
const NONCE = 12;
const TAG = 16;

/** Where the sealing key comes from: a KEK derived from the platform root key for one purpose. */
export interface SealingKeySource {
  deriveKek(id: string, version: number): Buffer;
}

/**
 * Small secrets the catalog must hold but never in clear (webhook signing secrets): AES-256-GCM
 * under a key derived from the platform root key for this purpose alone (HKDF info
 * `pgwarden/kek/v1/server/platform-<purpose>`), bound to what the secret belongs to by the aad.
 * Stored as `sealed:v1:<base64url(nonce | ciphertext | tag)>`.
 */
export class SecretSealer {
  readonly #key: KeyObject;

  constructor(root: SealingKeySource, purpose: string) {
    const raw = root.deriveKek(`platform-${purpose}`, 1);
    this.#key = createSecretKey(raw);
    raw.fill(0);
  }

  static isSealed(value: string): boolean {
    return value.startsWith(SEALED);
  }

  seal(secret: string, aad: string): string {
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return SEALED + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
  }

  /** The clear secret; throws when the value is not sealed, or was sealed with another key or aad. */
  open(sealed: string, aad: string): string {
    if (!SecretSealer.isSealed(sealed)) throw new Error('the secret is not sealed (a clear secret in the catalog is refused)');
    const blob = Buffer.from(sealed.slice(SEALED.length), 'base64url');
    if (blob.length < NONCE + TAG) throw new Error('the sealed secret is malformed');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, blob.subarray(0, NONCE), { authTagLength: TAG });
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(blob.subarray(blob.length - TAG));
      return Buffer.concat([decipher.update(blob.subarray(NONCE, blob.length - TAG)), decipher.final()]).toString('utf8');
    } catch {
      throw new Error('the sealed secret failed authentication (altered, moved to another target, or sealed by another platform key)');
    }
  }
}
