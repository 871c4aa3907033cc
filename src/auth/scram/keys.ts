// SCRAM-SHA-256 key arithmetic (RFC 5802 section 3):
//   SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i)
//   ClientKey = HMAC(SaltedPassword, "Client Key")   StoredKey = H(ClientKey)
//   ServerKey = HMAC(SaltedPassword, "Server Key")
//   ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
//   ServerSignature = HMAC(ServerKey, AuthMessage)

import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { scramPasswordBytes } from './saslprep.js';

export const SCRAM_KEY_LENGTH = 32;

export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError('xor operands differ in length');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time equality; unequal lengths are unequal (length is not secret here). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Derives the three keys from a password (SASLprep'd as PostgreSQL does). */
export function deriveKeys(password: string | Buffer, salt: Buffer, iterations: number): ScramKeys {
  const passwordBytes = scramPasswordBytes(password);
  const salted = pbkdf2Sync(passwordBytes, salt, iterations, SCRAM_KEY_LENGTH, 'sha256');
  passwordBytes.fill(0);
  const clientKey = hmac(salted, 'Client Key');
  const serverKey = hmac(salted, 'Server Key');
  salted.fill(0);
  return { clientKey, storedKey: sha256(clientKey), serverKey };
}
