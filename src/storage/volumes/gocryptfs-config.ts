// Reads a gocryptfs.conf and tells whether a password unlocks it, in process, so open() can
// refuse a wrong key with a clear error before spawning anything and also when the volume is
// already mounted. gocryptfs 2 format: KEK = HKDF-SHA256(scrypt(password, Salt, N, R, P, KeyLen),
// info "AES-GCM file content encryption"); EncryptedKey = 16-byte nonce || AES-256-GCM(master key)
// || 16-byte tag, with block number 0 (8 zero bytes) as associated data. Every intermediate
// (scrypt output, KEK, decrypted master key) is wiped before returning.
import { createDecipheriv, hkdfSync, scryptSync } from 'node:crypto';

export interface GocryptfsConf {
  readonly EncryptedKey: string;
  readonly ScryptObject: { Salt: string; N: number; R: number; P: number; KeyLen: number };
  readonly Version: number;
  readonly FeatureFlags: readonly string[];
}

export function parseGocryptfsConf(text: string): GocryptfsConf {
  const c = JSON.parse(text) as GocryptfsConf;
  if (typeof c.EncryptedKey !== 'string' || !c.ScryptObject || !Array.isArray(c.FeatureFlags)) {
    throw new Error('not a gocryptfs.conf');
  }
  return c;
}

/** true / false when the config's format is the one understood here; null otherwise (then the
 * caller lets gocryptfs itself judge the password). */
export function passwordUnlocks(conf: GocryptfsConf, password: Buffer): boolean | null {
  const flags = new Set(conf.FeatureFlags);
  if (conf.Version !== 2 || !flags.has('HKDF') || !flags.has('GCMIV128') || flags.has('AESSIV') || flags.has('XChaCha20Poly1305') || flags.has('FIDO2')) {
    return null;
  }
  const so = conf.ScryptObject;
  if (so.KeyLen !== 32 || so.N > 2 ** 20) return null;
  const encrypted = Buffer.from(conf.EncryptedKey, 'base64');
  if (encrypted.length !== 16 + 32 + 16) return null;
  const scrypted = scryptSync(password, Buffer.from(so.Salt, 'base64'), so.KeyLen, { N: so.N, r: so.R, p: so.P, maxmem: 256 * so.N * so.R + (1 << 20) });
  const kekBytes = new Uint8Array(hkdfSync('sha256', scrypted, Buffer.alloc(0), 'AES-GCM file content encryption', 32));
  scrypted.fill(0);
  let master: Buffer | null = null;
  try {
    const d = createDecipheriv('aes-256-gcm', kekBytes, encrypted.subarray(0, 16));
    d.setAAD(Buffer.alloc(8));
    d.setAuthTag(encrypted.subarray(encrypted.length - 16));
    master = d.update(encrypted.subarray(16, encrypted.length - 16));
    d.final();
    return true;
  } catch {
    return false;
  } finally {
    master?.fill(0);
    kekBytes.fill(0);
  }
}

/** The password gocryptfs gets for a raw key: its lowercase hex, built in a Buffer (no string
 * copy that cannot be wiped). The caller wipes it. */
export function hexPassword(key: Buffer): Buffer {
  const digits = '0123456789abcdef';
  const out = Buffer.alloc(key.length * 2);
  for (let i = 0; i < key.length; i++) {
    out[2 * i] = digits.charCodeAt(key[i]! >> 4);
    out[2 * i + 1] = digits.charCodeAt(key[i]! & 15);
  }
  return out;
}
