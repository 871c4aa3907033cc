// A test-only KekProvider: AES-256-GCM under a random in-memory key (the real providers live in
// src/crypto; this one lets backup tests run without a platform root key or an HSM). It counts
// wrap and unwrap calls so tests can check how often the backup code asks the KEK.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KekProvider, KekStatus, WrappedKey } from '../src/crypto/kek.js';

export class TestKek implements KekProvider {
  readonly kind = 'system';
  readonly version = 1;
  wraps = 0;
  unwraps = 0;
  readonly #key = randomBytes(32);

  describe(): Record<string, unknown> {
    return { kind: 'test' };
  }

  async wrap(dataKey: Buffer, aad: Buffer): Promise<WrappedKey> {
    this.wraps++;
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, nonce);
    c.setAAD(aad);
    const blob = Buffer.concat([nonce, c.update(dataKey), c.final(), c.getAuthTag()]);
    return { provider: 'system', kekVersion: 1, keyRef: 'system:server/test', blob: blob.toString('base64') };
  }

  async unwrap(wrapped: WrappedKey, aad: Buffer): Promise<Buffer> {
    this.unwraps++;
    const blob = Buffer.from(wrapped.blob, 'base64');
    const d = createDecipheriv('aes-256-gcm', this.#key, blob.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(blob.subarray(blob.length - 16));
    return Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]);
  }

  async check(): Promise<KekStatus> {
    return { ok: true, checkedAt: new Date().toISOString() };
  }

  async close(): Promise<void> {}
}
