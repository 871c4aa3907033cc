// Creating a customer-managed KEK in the HSM, only when an operator asks for it explicitly
// (`pgwarden server key create --create-key`): a customer-managed key belongs to the customer's
// HSM policy, so Pkcs11KekProvider.open never creates one.
import { randomBytes } from 'node:crypto';
import { P, Pkcs11Module, Pkcs11Problem, checkPinSource, findObjects, readAttributes, type PinSource } from './pkcs11-module.js';
import { unavailable, type Pkcs11KeyReference, type Pkcs11KeyType } from './pkcs11-key-ref.js';

/** Options of createPkcs11Key: where, what, and the PIN source. */
export interface CreatePkcs11KeyOptions {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly keyLabel: string;
  readonly pin: PinSource;
  readonly type: Pkcs11KeyType;
  /**
   * Hex CKA_ID; random 8 bytes when absent. Creation refuses when a key with this label (and this
   * keyId, when given) exists: to add a new key under an existing label (rotation), give a new keyId.
   */
  readonly keyId?: string;
  /** Return the existing key instead of failing when one already carries the label (and keyId, if given). */
  readonly ifMissing?: boolean;
  /** AES only: import this key material (restore from escrow) instead of generating it in the HSM. */
  readonly value?: Buffer;
}

/** Creates a KEK in the HSM: non-extractable, sensitive, private, encrypt/decrypt only. Returns its CKA_ID (hex). */
export async function createPkcs11Key(options: CreatePkcs11KeyOptions): Promise<{ readonly keyId: string; readonly created: boolean }> {
  checkPinSource(options.pin);
  const ref: Pkcs11KeyReference = { ...options };
  const module = (() => {
    try {
      return Pkcs11Module.acquire(options.modulePath);
    } catch (err) {
      throw unavailable(ref, err);
    }
  })();
  try {
    return module.run(options.tokenLabel, options.pin, (session) => {
      const lib = module.lib;
      const label = { type: P.CKA_LABEL, value: options.keyLabel };
      const idMatch = options.keyId === undefined ? [] : [{ type: P.CKA_ID, value: Buffer.from(options.keyId, 'hex') }];
      const existing = [
        ...findObjects(lib, session, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, label, ...idMatch]),
        ...findObjects(lib, session, [{ type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }, label, ...idMatch]),
      ];
      const first = existing[0];
      if (first !== undefined) {
        if (options.ifMissing !== true) throw new Pkcs11Problem(`already exists in token '${options.tokenLabel}'`);
        return { keyId: (readAttributes(lib, session, first, [P.CKA_ID])[0] ?? Buffer.alloc(0)).toString('hex'), created: false };
      }
      const id = options.keyId !== undefined ? Buffer.from(options.keyId, 'hex') : randomBytes(8);
      const common = [label, { type: P.CKA_ID, value: id }, { type: P.CKA_TOKEN, value: true }];
      const secret = [
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
      ];
      if (options.type === 'aes-256') {
        const usage = [
          { type: P.CKA_ENCRYPT, value: true },
          { type: P.CKA_DECRYPT, value: true },
          { type: P.CKA_WRAP, value: false },
          { type: P.CKA_UNWRAP, value: false },
        ];
        if (options.value !== undefined) {
          if (options.value.length !== 32) throw new RangeError('an AES-256 key value is 32 bytes');
          lib.C_CreateObject(session, [
            { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
            { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
            { type: P.CKA_VALUE, value: options.value },
            ...common,
            ...secret,
            ...usage,
          ]);
        } else {
          lib.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
            { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
            { type: P.CKA_VALUE_LEN, value: 32 },
            ...common,
            ...secret,
            ...usage,
          ]);
        }
      } else {
        if (options.value !== undefined) throw new RangeError('importing key material is supported for AES keys only');
        const bits = Number(options.type.slice(4));
        lib.C_GenerateKeyPair(
          session,
          { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN },
          [
            ...common,
            { type: P.CKA_ENCRYPT, value: true },
            { type: P.CKA_VERIFY, value: false },
            { type: P.CKA_MODULUS_BITS, value: bits },
            { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ],
          [...common, ...secret, { type: P.CKA_DECRYPT, value: true }, { type: P.CKA_SIGN, value: false }],
        );
      }
      return { keyId: id.toString('hex'), created: true };
    });
  } catch (err) {
    if (err instanceof RangeError) throw err;
    throw unavailable(ref, module.explain(err, options.tokenLabel, 'key creation'));
  } finally {
    module.release();
  }
}
