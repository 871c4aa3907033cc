// System-managed KEKs. One platform root key (32 random bytes in a 0600 file, created when missing);
// each server's KEK is derived from it: HKDF-SHA-256(root, salt = empty, info = "pgwarden/kek/v<version>/server/<id>").
// Wrap = AES-256-GCM with the caller's aad; blob = nonce (12) | ciphertext | tag (16).
// Rotation = a new version (new HKDF info); older versions stay derivable, so a provider at version N
// unwraps blobs of versions 1..N and rewrap() moves them to N without touching any data.
import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { wipe } from './data-key.js';
import { checkDataKey, checkVersion, now, type KekProvider, type KekStatus, type WrappedKey } from './kek.js';
import { KeyIntegrityError, KeyUnavailableError, RootKeyFileError, systemCode } from './key-errors.js';

const ROOT_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface LoadRootKeyOptions {
  /** Create the file (and its directory, 0700) when missing; default true. */
  readonly create?: boolean;
}

/** The platform root key, loaded once per process; hands out per-server KEK providers. */
export class SystemKeyRoot {
  readonly file: string;
  readonly #key: KeyObject;
  readonly #fingerprint: Buffer;

  private constructor(file: string, key: KeyObject, fingerprint: Buffer) {
    this.file = file;
    this.#key = key;
    this.#fingerprint = fingerprint;
  }

  /** Reads (or creates) the root key file. Refuses a file group/other can access, or of the wrong size. */
  static async load(file: string, options: LoadRootKeyOptions = {}): Promise<SystemKeyRoot> {
    const bytes = await readRootKeyFile(file, options.create ?? true);
    try {
      return new SystemKeyRoot(file, createSecretKey(bytes), createHash('sha256').update(bytes).digest());
    } finally {
      wipe(bytes);
    }
  }

  /** The KEK provider of one server at one version (default 1). */
  kek(serverId: string, version = 1): SystemKekProvider {
    return new SystemKekProvider(this, serverId, version);
  }

  /** Derives a server KEK; the caller wipes it. */
  deriveKek(serverId: string, version: number): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), `pgwarden/kek/v${version}/server/${serverId}`, 32));
  }

  /** Is the file still there, private, and holding the key this process uses. */
  async checkFile(): Promise<string | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readRootKeyFile(this.file, false);
    } catch (err) {
      return `${(err as Error).message}; the key in memory still works until the platform restarts: restore the file from backup`;
    }
    try {
      const fingerprint = createHash('sha256').update(bytes).digest();
      if (!timingSafeEqual(fingerprint, this.#fingerprint))
        return `the platform root key file ${this.file} no longer holds the key in use (it was replaced); restore the original from backup`;
      return undefined;
    } finally {
      wipe(bytes);
    }
  }
}

export class SystemKekProvider implements KekProvider {
  readonly kind = 'system';
  readonly version: number;
  readonly serverId: string;
  readonly keyRef: string;
  readonly #root: SystemKeyRoot;

  constructor(root: SystemKeyRoot, serverId: string, version: number) {
    checkVersion(version);
    if (serverId.length === 0 || serverId.length > 200 || /[\s/]/.test(serverId)) throw new RangeError('a server id is 1-200 characters without "/" or spaces');
    this.#root = root;
    this.serverId = serverId;
    this.version = version;
    this.keyRef = `system:server/${serverId}`;
  }

  /** The next version's provider (rotation). Rewrap existing keys with data-key.ts rewrap(). */
  rotate(): SystemKekProvider {
    return new SystemKekProvider(this.#root, this.serverId, this.version + 1);
  }

  describe(): Record<string, unknown> {
    return { kind: 'system', provider: 'system', keyRef: this.keyRef, version: this.version, algorithm: 'HKDF-SHA-256 + AES-256-GCM' };
  }

  async wrap(dataKey: Buffer, aad: Buffer): Promise<WrappedKey> {
    checkDataKey(dataKey);
    const kek = this.#root.deriveKek(this.serverId, this.version);
    try {
      const nonce = randomFillSync(Buffer.alloc(NONCE_BYTES));
      const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const blob = Buffer.concat([nonce, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
      return { provider: 'system', kekVersion: this.version, keyRef: this.keyRef, blob: blob.toString('base64') };
    } finally {
      wipe(kek);
    }
  }

  async unwrap(wrapped: WrappedKey, aad: Buffer): Promise<Buffer> {
    if (wrapped.provider !== 'system' || wrapped.keyRef !== this.keyRef) {
      throw new KeyIntegrityError(`the wrapped key belongs to ${JSON.stringify(wrapped.keyRef)}, not to ${this.keyRef}`);
    }
    if (!Number.isSafeInteger(wrapped.kekVersion) || wrapped.kekVersion < 1)
      throw new KeyIntegrityError(`the wrapped key of ${this.keyRef} has an invalid KEK version`);
    if (wrapped.kekVersion > this.version) {
      throw new KeyUnavailableError(
        `the key of ${this.keyRef} was wrapped with KEK version ${wrapped.kekVersion}, newer than this provider's version ${this.version}`,
      );
    }
    const blob = Buffer.from(wrapped.blob, 'base64');
    const length = blob.length - NONCE_BYTES - TAG_BYTES;
    if (length !== 32 && length !== 64) throw new KeyIntegrityError(`the wrapped key of ${this.keyRef} has a malformed blob (${blob.length} bytes)`);
    const kek = this.#root.deriveKek(this.serverId, wrapped.kekVersion);
    const key = Buffer.alloc(length);
    try {
      const decipher = createDecipheriv('aes-256-gcm', kek, blob.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(aad);
      decipher.setAuthTag(blob.subarray(NONCE_BYTES + length));
      const clear = decipher.update(blob.subarray(NONCE_BYTES, NONCE_BYTES + length));
      clear.copy(key);
      wipe(clear);
      decipher.final();
      return key;
    } catch {
      wipe(key);
      throw new KeyIntegrityError(
        `the wrapped key of ${this.keyRef} (KEK version ${wrapped.kekVersion}) failed authentication: the blob or its purpose (aad) was altered`,
      );
    } finally {
      wipe(kek);
    }
  }

  async check(): Promise<KekStatus> {
    const reason = await this.#root.checkFile();
    return reason === undefined ? { ok: true, checkedAt: now() } : { ok: false, checkedAt: now(), reason };
  }

  async close(): Promise<void> {}
}

async function readRootKeyFile(file: string, create: boolean): Promise<Buffer> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    if (systemCode(err) !== 'ENOENT') throw new RootKeyFileError(`cannot read the platform root key ${file}: ${systemCode(err) ?? 'error'}`);
    if (!create) throw new RootKeyFileError(`the platform root key ${file} does not exist`);
    return createRootKeyFile(file);
  }
  if (!info.isFile()) throw new RootKeyFileError(`the platform root key ${file} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new RootKeyFileError(
      `refusing the platform root key ${file}: it is accessible by group or others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 on it and check who may have read it`,
    );
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new RootKeyFileError(`cannot read the platform root key ${file}: ${systemCode(err) ?? 'error'}`);
  }
  if (bytes.length !== ROOT_KEY_BYTES) {
    wipe(bytes);
    throw new RootKeyFileError(`the platform root key ${file} holds ${info.size} bytes, not ${ROOT_KEY_BYTES}`);
  }
  return bytes;
}

async function createRootKeyFile(file: string): Promise<Buffer> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const bytes = randomFillSync(Buffer.alloc(ROOT_KEY_BYTES));
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return bytes;
  } catch (err) {
    wipe(bytes);
    if (systemCode(err) === 'EEXIST') return readRootKeyFile(file, false);
    throw new RootKeyFileError(`cannot create the platform root key ${file}: ${systemCode(err) ?? 'error'}`);
  }
}
