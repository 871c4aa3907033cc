// Data keys (DEKs): random per-volume / per-backup keys that exist in clear only in memory while
// needed. newDataKey makes one; withKey unwraps one for the duration of a callback and zeroes it
// after; rewrap moves a wrapped key from one KEK (or KEK version) to another without touching data.
import { randomFillSync } from 'node:crypto';
import type { KekProvider, WrappedKey } from './kek.js';

/** A fresh random data key: 32 bytes (AES-256-GCM) or 64 bytes (AES-256-XTS volumes). Not from Buffer's shared pool, so wipe() clears the only copy. */
export function newDataKey(bytes: 32 | 64 = 32): Buffer {
  if (bytes !== 32 && bytes !== 64) throw new RangeError('a data key is 32 or 64 bytes');
  return randomFillSync(Buffer.alloc(bytes));
}

/** Zeroes buffers holding key material (as far as Node allows: copies V8 or OpenSSL made are out of reach). */
export function wipe(...buffers: ReadonlyArray<Buffer | Uint8Array | undefined>): void {
  for (const b of buffers) b?.fill(0);
}

/** Unwraps `wrapped` with `provider` (bound to `aad`), runs fn with the clear key, and zeroes it afterwards, also on error. */
export async function withKey<T>(wrapped: WrappedKey, provider: KekProvider, aad: Buffer, fn: (dataKey: Buffer) => T | Promise<T>): Promise<T> {
  const key = await provider.unwrap(wrapped, aad);
  try {
    return await fn(key);
  } finally {
    wipe(key);
  }
}

/** Re-wraps a data key from one KEK to another (rotation); the clear key lives only inside this call. */
export async function rewrap(wrapped: WrappedKey, aad: Buffer, from: KekProvider, to: KekProvider): Promise<WrappedKey> {
  return withKey(wrapped, from, aad, (key) => to.wrap(key, aad));
}
