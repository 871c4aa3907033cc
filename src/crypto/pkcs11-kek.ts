// Customer-managed KEKs held in an HSM through PKCS#11. The key never leaves the HSM:
// - AES-256 secret key: wrap = C_Encrypt with CKM_AES_GCM (random 96-bit IV, the aad as GCM AAD,
//   128-bit tag) inside the HSM; unwrap = C_Decrypt. blob = 0x01 | IV (12) | ciphertext | tag (16).
// - RSA ≥ 2048 key pair: wrap = RSA-OAEP of (data key | SHA-256(aad)) under the public key (computed
//   here from CKA_MODULUS / CKA_PUBLIC_EXPONENT); unwrap = C_Decrypt with CKM_RSA_PKCS_OAEP inside the
//   HSM, then the aad hash is compared. OAEP hash SHA-256 by default (blob 0x02 | ciphertext); SHA-1
//   (blob 0x03) for HSMs that offer nothing else, such as SoftHSM 2.6 (see its issue #474).
//   The aad travels inside the OAEP plaintext because few HSMs support an OAEP label.
// Every wrap is checked by unwrapping it once before it is returned: a blob that cannot be unwrapped
// is never handed to the catalog. Keys are found by label (and CKA_ID) at every use, so a deleted or
// disabled key shows at once. Pkcs11KekProvider.open never creates a key: createPkcs11Key does, when
// an operator asks for it explicitly (`pgwarden server key create --create-key`), because a
// customer-managed key belongs to the customer's HSM policy, not to pgwarden.
import { constants, createHash, createPublicKey, publicEncrypt, randomBytes, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { wipe } from './data-key.js';
import { checkDataKey, checkVersion, now, type KekProvider, type KekStatus, type WrappedKey } from './kek.js';
import { KeyIntegrityError, KeyUnavailableError } from './key-errors.js';
import {
  P,
  Pkcs11Module,
  Pkcs11Problem,
  bool,
  checkPinSource,
  ckr,
  describePin,
  findObjects,
  readAttributes,
  ulong,
  type Handle,
  type PinSource,
} from './pkcs11-module.js';
import { pkcs11Uri, unavailable, type Pkcs11KeyReference } from './pkcs11-key-ref.js';

export type { PinSource } from './pkcs11-module.js';
export { pkcs11Uri, type Pkcs11KeyReference, type Pkcs11KeyType } from './pkcs11-key-ref.js';
export { createPkcs11Key, type CreatePkcs11KeyOptions } from './pkcs11-create-key.js';

const BLOB_AES_GCM = 0x01;
const BLOB_RSA_OAEP_SHA256 = 0x02;
const BLOB_RSA_OAEP_SHA1 = 0x03;
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
const CHECK_AAD = Buffer.from('pgwarden/kek-check', 'latin1');
/** Codes a decryption of a bad blob may give (SoftHSM gives CKR_GENERAL_ERROR for a failed GCM tag). */
const DATA_CODES = new Set([
  P.CKR_ENCRYPTED_DATA_INVALID,
  P.CKR_ENCRYPTED_DATA_LEN_RANGE,
  P.CKR_DATA_INVALID,
  P.CKR_DATA_LEN_RANGE,
  P.CKR_GENERAL_ERROR,
  P.CKR_FUNCTION_FAILED,
]);

interface ResolvedKey {
  readonly type: 'aes' | 'rsa';
  readonly id: Buffer;
  readonly publicKey?: KeyObject;
  readonly modulusBits?: number;
}

export class Pkcs11KekProvider implements KekProvider {
  readonly kind = 'customer';
  readonly version: number;
  readonly reference: Required<Omit<Pkcs11KeyReference, 'pin'>> & { readonly pin: PinSource };
  readonly keyRef: string;
  readonly #module: Pkcs11Module;
  readonly #key: ResolvedKey;
  #closed = false;

  private constructor(module: Pkcs11Module, ref: Pkcs11KeyReference, key: ResolvedKey) {
    this.#module = module;
    this.#key = key;
    this.version = ref.version ?? 1;
    this.reference = { ...ref, keyId: key.id.toString('hex'), version: this.version, rsaOaepHash: ref.rsaOaepHash ?? 'sha256' };
    this.keyRef = pkcs11Uri(ref.tokenLabel, ref.keyLabel, key.id);
  }

  /** Finds the key in the token (never creates it); throws KeyUnavailableError naming the key and why. */
  static async open(ref: Pkcs11KeyReference): Promise<Pkcs11KekProvider> {
    checkVersion(ref.version ?? 1);
    checkPinSource(ref.pin);
    if (ref.keyId !== undefined && !/^([0-9a-f]{2})+$/i.test(ref.keyId)) throw new RangeError('keyId is the hex of the key object CKA_ID');
    let module: Pkcs11Module;
    try {
      module = Pkcs11Module.acquire(ref.modulePath);
    } catch (err) {
      throw unavailable(ref, err);
    }
    try {
      const key = module.run(ref.tokenLabel, ref.pin, (session) => resolveKey(module, session, ref, undefined));
      return new Pkcs11KekProvider(module, ref, key);
    } catch (err) {
      module.release();
      throw unavailable(ref, module.explain(err, ref.tokenLabel, 'key lookup'));
    }
  }

  /**
   * The provider of the next version: another key label, or a new key under the same label
   * (give its keyId, or leave it out when exactly one other key carries the label).
   * Rewrap existing keys with data-key.ts rewrap(wrapped, aad, old, new), then close the old provider.
   */
  async rotate(to: { readonly keyLabel?: string; readonly keyId?: string } = {}): Promise<Pkcs11KekProvider> {
    const ref: Pkcs11KeyReference = { ...this.reference, keyLabel: to.keyLabel ?? this.reference.keyLabel, keyId: to.keyId, version: this.version + 1 };
    if (to.keyId === undefined && ref.keyLabel === this.reference.keyLabel) {
      // same label: the new key is the one that is not the current key
      const module = Pkcs11Module.acquire(ref.modulePath);
      try {
        const key = module.run(ref.tokenLabel, ref.pin, (session) => resolveKey(module, session, ref, this.#key.id));
        return new Pkcs11KekProvider(module, ref, key);
      } catch (err) {
        module.release();
        throw unavailable(ref, module.explain(err, ref.tokenLabel, 'key lookup'));
      }
    }
    return Pkcs11KekProvider.open(ref);
  }

  describe(): Record<string, unknown> {
    const r = this.reference;
    return {
      kind: 'customer',
      provider: 'pkcs11',
      keyRef: this.keyRef,
      version: this.version,
      module: r.modulePath,
      tokenLabel: r.tokenLabel,
      keyLabel: r.keyLabel,
      keyId: r.keyId,
      keyType: this.#key.type === 'aes' ? 'AES-256' : `RSA-${this.#key.modulusBits ?? 0}`,
      mechanism: this.#key.type === 'aes' ? 'CKM_AES_GCM' : `CKM_RSA_PKCS_OAEP (${r.rsaOaepHash === 'sha1' ? 'SHA-1' : 'SHA-256'})`,
      pinSource: describePin(r.pin),
    };
  }

  async wrap(dataKey: Buffer, aad: Buffer): Promise<WrappedKey> {
    checkDataKey(dataKey);
    this.assertOpen();
    const blob = this.call('wrap', (session) => this.wrapWith(session, dataKey, aad));
    const wrapped: WrappedKey = { provider: 'pkcs11', kekVersion: this.version, keyRef: this.keyRef, blob: blob.toString('base64') };
    // prove the HSM can unwrap what we hand out
    const back = await this.unwrap(wrapped, aad);
    const same = back.length === dataKey.length && timingSafeEqual(back, dataKey);
    wipe(back);
    if (!same) throw new KeyUnavailableError(this.sentence('returned a wrapped key that does not unwrap to the data key; the HSM is not behaving'));
    return wrapped;
  }

  async unwrap(wrapped: WrappedKey, aad: Buffer): Promise<Buffer> {
    this.assertOpen();
    if (wrapped.provider !== 'pkcs11' || wrapped.keyRef !== this.keyRef || wrapped.kekVersion !== this.version) {
      throw new KeyIntegrityError(
        `the wrapped key belongs to ${JSON.stringify(wrapped.keyRef)} version ${wrapped.kekVersion}, not to ${this.keyRef} version ${this.version}`,
      );
    }
    const blob = Buffer.from(wrapped.blob, 'base64');
    try {
      return this.call('unwrap', (session) => this.unwrapWith(session, blob, aad));
    } catch (err) {
      if (!(err instanceof BlobRejected)) throw err;
      // The HSM refused the blob: altered blob or aad, unless the key itself no longer works.
      const reason = this.probe();
      if (reason !== undefined) throw new KeyUnavailableError(this.sentence(reason));
      throw new KeyIntegrityError(
        `the wrapped key of customer key '${this.reference.keyLabel}' failed authentication: the blob or its purpose (aad) was altered`,
      );
    }
  }

  async check(): Promise<KekStatus> {
    if (this.#closed) return { ok: false, checkedAt: now(), reason: 'the provider is closed' };
    const reason = this.probe(true);
    return reason === undefined ? { ok: true, checkedAt: now() } : { ok: false, checkedAt: now(), reason: this.sentence(reason) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#module.release();
  }

  /** undefined when the key is present, enabled and round-trips a random key; else why not. */
  private probe(relogin = false): string | undefined {
    const r = this.reference;
    const sample = randomBytes(32);
    try {
      const back = this.#module.run(r.tokenLabel, r.pin, (session) => {
        if (relogin) session = this.#module.revalidate(r.tokenLabel, r.pin);
        const blob = this.wrapWith(session, sample, CHECK_AAD);
        return this.unwrapWith(session, blob, CHECK_AAD);
      });
      const same = timingSafeEqual(back, sample);
      wipe(back);
      return same ? undefined : 'does not round-trip a test key';
    } catch (err) {
      if (err instanceof BlobRejected) return 'cannot decrypt what it encrypted (the HSM rejected its own test blob)';
      return this.#module.explain(err, r.tokenLabel, 'self-test').message;
    } finally {
      wipe(sample);
    }
  }

  /** Runs an HSM operation; PKCS#11 failures become KeyUnavailableError naming the key. */
  private call<T>(what: string, fn: (session: Handle) => T): T {
    try {
      return this.#module.run(this.reference.tokenLabel, this.reference.pin, fn);
    } catch (err) {
      if (err instanceof BlobRejected || err instanceof KeyIntegrityError) throw err;
      throw new KeyUnavailableError(this.sentence(this.#module.explain(err, this.reference.tokenLabel, what).message));
    }
  }

  private wrapWith(session: Handle, dataKey: Buffer, aad: Buffer): Buffer {
    const lib = this.#module.lib;
    if (this.#key.type === 'aes') {
      const handle = this.findHandle(session, P.CKO_SECRET_KEY, P.CKA_ENCRYPT, 'encryption');
      const iv = randomFillSync(Buffer.alloc(GCM_IV_BYTES));
      lib.C_EncryptInit(session, gcm(iv, aad), handle);
      const out = lib.C_Encrypt(session, dataKey, Buffer.alloc(dataKey.length + GCM_TAG_BYTES));
      return Buffer.concat([Buffer.from([BLOB_AES_GCM]), iv, out]);
    }
    // RSA: the private key must still exist and be enabled, or we would wrap for a key nobody can use
    this.findHandle(session, P.CKO_PRIVATE_KEY, P.CKA_DECRYPT, 'decryption');
    const sha1 = this.reference.rsaOaepHash === 'sha1';
    const plain = Buffer.concat([dataKey, aadDigest(aad)]);
    try {
      const publicKey = this.#key.publicKey as KeyObject;
      const ct = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: sha1 ? 'sha1' : 'sha256' }, plain);
      return Buffer.concat([Buffer.from([sha1 ? BLOB_RSA_OAEP_SHA1 : BLOB_RSA_OAEP_SHA256]), ct]);
    } finally {
      wipe(plain);
    }
  }

  private unwrapWith(session: Handle, blob: Buffer, aad: Buffer): Buffer {
    const lib = this.#module.lib;
    const kind = blob[0];
    if (this.#key.type === 'aes') {
      if (kind !== BLOB_AES_GCM || (blob.length !== 1 + GCM_IV_BYTES + 32 + GCM_TAG_BYTES && blob.length !== 1 + GCM_IV_BYTES + 64 + GCM_TAG_BYTES)) {
        throw new KeyIntegrityError(`the wrapped key of customer key '${this.reference.keyLabel}' has a malformed blob`);
      }
      const handle = this.findHandle(session, P.CKO_SECRET_KEY, P.CKA_DECRYPT, 'decryption');
      const iv = blob.subarray(1, 1 + GCM_IV_BYTES);
      const body = blob.subarray(1 + GCM_IV_BYTES);
      const out = Buffer.alloc(body.length);
      try {
        lib.C_DecryptInit(session, gcm(iv, aad), handle);
        const clear = lib.C_Decrypt(session, body, out);
        return Buffer.from(clear); // copy, then wipe the output buffer
      } catch (err) {
        if (DATA_CODES.has(ckr(err) ?? -1)) throw new BlobRejected();
        throw err;
      } finally {
        wipe(out);
      }
    }
    if (kind !== BLOB_RSA_OAEP_SHA256 && kind !== BLOB_RSA_OAEP_SHA1)
      throw new KeyIntegrityError(`the wrapped key of customer key '${this.reference.keyLabel}' has a malformed blob`);
    const handle = this.findHandle(session, P.CKO_PRIVATE_KEY, P.CKA_DECRYPT, 'decryption');
    const out = Buffer.alloc(((this.#key.modulusBits ?? 2048) + 7) >> 3);
    try {
      lib.C_DecryptInit(session, oaep(kind === BLOB_RSA_OAEP_SHA1), handle);
      let clear: Buffer;
      try {
        clear = lib.C_Decrypt(session, blob.subarray(1), out);
      } catch (err) {
        if (DATA_CODES.has(ckr(err) ?? -1)) throw new BlobRejected();
        throw err;
      }
      const keyLength = clear.length - 32;
      if ((keyLength !== 32 && keyLength !== 64) || !timingSafeEqual(clear.subarray(keyLength), aadDigest(aad))) throw new BlobRejected();
      return Buffer.from(clear.subarray(0, keyLength));
    } finally {
      wipe(out);
    }
  }

  /** The key object's handle, looked up now; fails when it is gone or `usage` is false. */
  private findHandle(session: Handle, objectClass: number, usage: number, usageName: string): Handle {
    const lib = this.#module.lib;
    const found = findObjects(lib, session, [
      { type: P.CKA_CLASS, value: objectClass },
      { type: P.CKA_LABEL, value: this.reference.keyLabel },
      { type: P.CKA_ID, value: this.#key.id },
    ]);
    const handle = found[0];
    if (handle === undefined) throw new Pkcs11Problem(`was not found in token '${this.reference.tokenLabel}'`);
    const [allowed] = readAttributes(lib, session, handle, [usage]);
    if (allowed === undefined || !bool(allowed)) {
      throw new Pkcs11Problem(
        `in token '${this.reference.tokenLabel}' is disabled for ${usageName} (${usage === P.CKA_DECRYPT ? 'CKA_DECRYPT' : 'CKA_ENCRYPT'} is false)`,
      );
    }
    return handle;
  }

  private sentence(reason: string): string {
    return `Customer key '${this.reference.keyLabel}' ${reason} (PKCS#11 module ${this.reference.modulePath}).`;
  }

  private assertOpen(): void {
    if (this.#closed) throw new KeyUnavailableError(this.sentence('cannot be used: its provider was closed'));
  }
}

/** Raised inside an operation when the HSM (or the aad check) rejects a blob; sorted out by unwrap(). */
class BlobRejected extends Error {}

function resolveKey(module: Pkcs11Module, session: Handle, ref: Pkcs11KeyReference, exclude: Buffer | undefined): ResolvedKey {
  const lib = module.lib;
  const match = [{ type: P.CKA_LABEL, value: ref.keyLabel }, ...(ref.keyId === undefined ? [] : [{ type: P.CKA_ID, value: Buffer.from(ref.keyId, 'hex') }])];
  const candidates: { handle: Handle; cls: number; id: Buffer }[] = [];
  for (const cls of [P.CKO_SECRET_KEY, P.CKO_PRIVATE_KEY]) {
    for (const handle of findObjects(lib, session, [{ type: P.CKA_CLASS, value: cls }, ...match], 16)) {
      const id = readAttributes(lib, session, handle, [P.CKA_ID])[0] ?? Buffer.alloc(0);
      if (exclude === undefined || !id.equals(exclude)) candidates.push({ handle, cls, id });
    }
  }
  const chosen = candidates[0];
  if (chosen === undefined) throw new Pkcs11Problem(`was not found in token '${ref.tokenLabel}'`);
  if (candidates.length > 1)
    throw new Pkcs11Problem(`is ambiguous in token '${ref.tokenLabel}': ${candidates.length} key objects carry this label; give keyId`);
  if (chosen.cls === P.CKO_SECRET_KEY) {
    const [keyType, valueLen] = readAttributes(lib, session, chosen.handle, [P.CKA_KEY_TYPE, P.CKA_VALUE_LEN]);
    if (keyType === undefined || ulong(keyType) !== P.CKK_AES || valueLen === undefined || ulong(valueLen) !== 32) {
      throw new Pkcs11Problem(`in token '${ref.tokenLabel}' is not an AES-256 key`);
    }
    return { type: 'aes', id: chosen.id };
  }
  const [keyType, modulus, exponent] = readAttributes(lib, session, chosen.handle, [P.CKA_KEY_TYPE, P.CKA_MODULUS, P.CKA_PUBLIC_EXPONENT]);
  if (keyType === undefined || ulong(keyType) !== P.CKK_RSA || modulus === undefined || exponent === undefined || modulus.length === 0) {
    throw new Pkcs11Problem(`in token '${ref.tokenLabel}' is not an RSA private key with a readable modulus`);
  }
  const modulusBits = bitLength(modulus);
  if (modulusBits < 2048) throw new Pkcs11Problem(`in token '${ref.tokenLabel}' is a ${modulusBits}-bit RSA key; at least 2048 bits are required`);
  const publicKey = createPublicKey({ key: { kty: 'RSA', n: modulus.toString('base64url'), e: exponent.toString('base64url') }, format: 'jwk' });
  return { type: 'rsa', id: chosen.id, publicKey, modulusBits };
}

function bitLength(bigEndian: Buffer): number {
  let i = 0;
  while (i < bigEndian.length && bigEndian[i] === 0) i++;
  if (i === bigEndian.length) return 0;
  return (bigEndian.length - i - 1) * 8 + (32 - Math.clz32(bigEndian[i] ?? 0));
}

function gcm(iv: Buffer, aad: Buffer): { mechanism: number; parameter: { type: number; iv: Buffer; aad: Buffer; ivBits: number; tagBits: number } } {
  return { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, aad, ivBits: GCM_IV_BYTES * 8, tagBits: GCM_TAG_BYTES * 8 } };
}

const CKZ_DATA_SPECIFIED = 1;

function oaep(sha1: boolean): { mechanism: number; parameter: { type: number; hashAlg: number; mgf: number; source: number } } {
  return {
    mechanism: P.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: P.CK_PARAMS_RSA_OAEP,
      hashAlg: sha1 ? P.CKM_SHA_1 : P.CKM_SHA256,
      mgf: sha1 ? P.CKG_MGF1_SHA1 : P.CKG_MGF1_SHA256,
      source: CKZ_DATA_SPECIFIED,
    },
  };
}

function aadDigest(aad: Buffer): Buffer {
  return createHash('sha256').update('pgwarden/kek-aad/v1\0').update(aad).digest();
}
