// The platform's audit signing key: Ed25519 (ECDSA P-256 when the process runs in FIPS mode), a
// PKCS#8 PEM file readable by the owner only.
// Created (with its parent directory, 0700) when missing. The PEM bytes are zeroed after use.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, getFips, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { AuditKeyError, systemCode } from './errors.js';

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Hex SHA-256 of the public key's SPKI DER encoding. */
  readonly keyId: string;
}

export async function loadSigningKey(file: string, options: { create?: boolean } = {}): Promise<SigningKey> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    if (systemCode(err) !== 'ENOENT') throw new AuditKeyError(`cannot read the audit signing key ${file}: ${systemCode(err) ?? 'error'}`);
    if (options.create === false) throw new AuditKeyError(`the audit signing key ${file} does not exist`);
    return createSigningKey(file);
  }
  if (!info.isFile()) throw new AuditKeyError(`the audit signing key ${file} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new AuditKeyError(`the audit signing key ${file} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const pem = await readFile(file);
  try {
    return fromPrivateKey(createPrivateKey({ key: pem, format: 'pem' }), file);
  } catch (err) {
    if (err instanceof AuditKeyError) throw err;
    throw new AuditKeyError(`the audit signing key ${file} is not a PKCS#8 PEM private key`);
  } finally {
    pem.fill(0);
  }
}

async function createSigningKey(file: string): Promise<SigningKey> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // Ed25519 is not in every FIPS provider: FIPS mode signs with ECDSA P-256.
  const { privateKey } = getFips() === 1 ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const pem = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }));
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(pem);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (systemCode(err) === 'EEXIST') return loadSigningKey(file, { create: false });
    throw new AuditKeyError(`cannot create the audit signing key ${file}: ${systemCode(err) ?? 'error'}`);
  } finally {
    pem.fill(0);
  }
  return fromPrivateKey(privateKey, file);
}

function fromPrivateKey(privateKey: KeyObject, file: string): SigningKey {
  if (!supported(privateKey)) throw new AuditKeyError(`the audit signing key ${file} is not an Ed25519 or ECDSA P-256 key`);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

function supported(k: KeyObject): boolean {
  return k.asymmetricKeyType === 'ed25519' || (k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1');
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** A public key from a KeyObject or an SPKI PEM string; throws when it is not Ed25519 or P-256. */
export function toPublicKey(key: KeyObject | string): KeyObject {
  const k = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  if (!supported(k)) throw new AuditKeyError('the audit public key is not an Ed25519 or ECDSA P-256 key');
  return k;
}

export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}
