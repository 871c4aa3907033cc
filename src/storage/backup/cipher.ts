// How backup bytes are encrypted: the AES-256-GCM chunked stream of src/crypto/aead-stream.ts
// under a random 256-bit data key, which the server's KEK wraps (src/crypto/kek.ts).
//
// Key per what:
//   base backup  one data key per backup, wrapped in its manifest.json;
//   WAL archive  one data key per server WAL "epoch" (see wal-keys.ts), wrapped in
//                wal/keys/<epoch>.json; a restore unwraps each epoch once, not once per segment.
// Associated data binds every ciphertext to what it is, so a file moved to another name, backup
// or server fails authentication even under the same key:
//   base   "pgwarden/backup/v1" NUL serverId NUL "base" NUL backupId
//   WAL    "pgwarden/backup/v1" NUL serverId NUL "wal"  NUL epoch NUL walFileName
// The KEK wrap uses its own AAD ("…/key" NUL serverId NUL kind NUL id), so a wrapped key cannot
// be reused for another backup or epoch either.
import type { Transform } from 'node:stream';
import { createDecryptStream, createEncryptStream } from '../../crypto/aead-stream.js';
import { newDataKey } from '../../crypto/data-key.js';
import { parseWrappedKey, type KekProvider, type WrappedKey } from '../../crypto/kek.js';

export type { KekProvider, WrappedKey };

export const BACKUP_FORMAT_VERSION = 1;
export const CIPHER_NAME = 'AES-256-GCM-chunked';
const PREFIX = 'pgwarden/backup/v1';

export type KeyKind = 'base' | 'wal';

/** AAD given to the KEK when wrapping the data key of a backup or a WAL epoch. */
export type KeyAadFor = (serverId: string, kind: KeyKind, id: string) => Buffer;

export const defaultKeyAad: KeyAadFor = (serverId, kind, id) => Buffer.from([`${PREFIX}/key`, serverId, kind, id].join('\0'));

export function baseStreamAad(serverId: string, backupId: string): Buffer {
  return Buffer.from([PREFIX, serverId, 'base', backupId].join('\0'));
}

export function walStreamAad(serverId: string, epoch: string, walFile: string): Buffer {
  return Buffer.from([PREFIX, serverId, 'wal', epoch, walFile].join('\0'));
}

export { newDataKey };

export function encryptStream(key: Buffer, aad: Buffer): Transform {
  return createEncryptStream({ key, aad });
}

export function decryptStream(key: Buffer, aad: Buffer): Transform {
  return createDecryptStream({ key, aad });
}

/** A WrappedKey as stored in a manifest or WAL key file (it is JSON already: its blob is base64). */
export type StoredWrappedKey = WrappedKey;

export function storeWrappedKey(w: WrappedKey): StoredWrappedKey {
  return { provider: w.provider, kekVersion: w.kekVersion, keyRef: w.keyRef, blob: w.blob };
}

/** Validates a stored wrapped key (throws KeyIntegrityError when malformed). */
export function loadWrappedKey(s: unknown): WrappedKey {
  return parseWrappedKey(s);
}
