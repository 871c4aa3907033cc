// The key hierarchy (data keys wrapped by KEKs), the KEK providers (system, PKCS#11), the PGWAEAD1
// stream format for backups and WAL, and FIPS mode.

export { newDataKey, wipe, withKey, rewrap } from './data-key.js';
export { serverKeyAad, parseWrappedKey, type KekProvider, type KekStatus, type KeyPurpose, type WrappedKey } from './kek.js';
export { KeyIntegrityError, KeyUnavailableError, RootKeyFileError } from './key-errors.js';
export { SystemKeyRoot, SystemKekProvider, type LoadRootKeyOptions } from './system-kek.js';
export {
  Pkcs11KekProvider,
  createPkcs11Key,
  pkcs11Uri,
  type CreatePkcs11KeyOptions,
  type Pkcs11KeyReference,
  type Pkcs11KeyType,
  type PinSource,
} from './pkcs11-kek.js';
export { createEncryptStream, createDecryptStream, encryptBuffer, decryptBuffer, type EncryptOptions, type DecryptOptions } from './aead-stream.js';
export { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE } from './aead-format.js';
export { AeadStreamError, ChunkAuthenticationError, StreamFormatError, StreamTrailingDataError, StreamTruncatedError } from './stream-errors.js';
export { enableFips, fipsStatus, FipsUnavailableError, type FipsStatus } from './fips.js';
