// Why a data key could not be wrapped or unwrapped. Two kinds, because the platform reacts differently:
// KeyUnavailableError — the key-encryption key is gone, disabled, or its HSM refuses (the server turns
// Inaccessible until the key is back); KeyIntegrityError — the wrapped blob or its purpose (aad) was
// altered or belongs elsewhere (a catalog or storage fault, never fixed by waiting).
// Messages name the key and the reason; they never carry key material, PINs or blob bytes.

export class KeyUnavailableError extends Error {
  override readonly name = 'KeyUnavailableError';
}

export class KeyIntegrityError extends Error {
  override readonly name = 'KeyIntegrityError';
}

/** The platform root key file is missing, unreadable, malformed or too open. */
export class RootKeyFileError extends Error {
  override readonly name = 'RootKeyFileError';
}

/** The `code` of a Node.js system error (ENOENT, EACCES, ...), if it is one. */
export function systemCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}
