// SCRAM-SHA-256 verifiers as PostgreSQL stores them in pg_authid.rolpassword:
//   SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>

import { createHmac, randomBytes } from 'node:crypto';
import { decodeBase64 } from './attributes.js';
import { deriveKeys, SCRAM_KEY_LENGTH } from './keys.js';

export interface ScramVerifier {
  readonly iterations: number;
  readonly salt: Buffer;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

export interface BuildVerifierOptions {
  /** Default: 16 random bytes (PostgreSQL's SCRAM_DEFAULT_SALT_LEN). */
  readonly salt?: Buffer;
  /** Default: 4096 (PostgreSQL's default scram_iterations). */
  readonly iterations?: number;
}

export const DEFAULT_SCRAM_ITERATIONS = 4096;
export const DEFAULT_SALT_LENGTH = 16;
const MAX_ITERATIONS = 0x7fffffff;

const FORMAT = /^SCRAM-SHA-256\$([1-9][0-9]{0,9}):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/** Parses a stored verifier; null for MD5 hashes, plain text and anything malformed. */
export function parseScramVerifier(text: string): ScramVerifier | null {
  const m = FORMAT.exec(text);
  if (m === null) return null;
  const iterations = Number(m[1]);
  // PostgreSQL accepts any base64 its decoder accepts, so non-canonical padding bits are allowed.
  const salt = decodeBase64(m[2]!, false);
  const storedKey = decodeBase64(m[3]!, false);
  const serverKey = decodeBase64(m[4]!, false);
  if (iterations > MAX_ITERATIONS || salt === null || salt.length === 0) return null;
  if (storedKey?.length !== SCRAM_KEY_LENGTH || serverKey?.length !== SCRAM_KEY_LENGTH) return null;
  return { iterations, salt, storedKey, serverKey };
}

export function formatScramVerifier(verifier: ScramVerifier): string {
  const b64 = (b: Buffer): string => b.toString('base64');
  return `SCRAM-SHA-256$${verifier.iterations}:${b64(verifier.salt)}$${b64(verifier.storedKey)}:${b64(verifier.serverKey)}`;
}

/**
 * Builds the verifier PostgreSQL would store for `password` (SASLprep'd, or the raw password when
 * it cannot be prepared, as PostgreSQL does). Returns the pg_authid text form.
 */
export function buildScramVerifier(password: string | Buffer, options: BuildVerifierOptions = {}): string {
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
    throw new RangeError('SCRAM iteration count must be an integer from 1 to 2147483647');
  }
  const salt = options.salt ?? randomBytes(DEFAULT_SALT_LENGTH);
  if (salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  const { clientKey, storedKey, serverKey } = deriveKeys(password, salt, iterations);
  clientKey.fill(0);
  return formatScramVerifier({ iterations, salt, storedKey, serverKey });
}

/**
 * A verifier for a role that does not exist, so the exchange looks like a real one: the salt is
 * derived from a platform secret, the server and the user name (like PostgreSQL's
 * scram_mock_salt, which mixes in a per-cluster nonce), so the same name always sees the same
 * salt on one server and a different one on every other server, as a real role does; nobody
 * without the secret can tell it is a mock. The iteration count is the one real roles get
 * (PostgreSQL's default), so it gives nothing away either.
 */
export function mockVerifier(server: string, username: string, secret: Buffer, options: { readonly iterations?: number } = {}): ScramVerifier {
  if (secret.length < 16) throw new RangeError('mock verifier secret must be at least 16 bytes');
  if (server === '') throw new RangeError('mock verifier needs the server it stands in for');
  // Length-prefixed fields: no (server, user) pair can be spelled as another one.
  const scope = `${Buffer.byteLength(server)}:${server}\0${Buffer.byteLength(username)}:${username}`;
  const derive = (label: string): Buffer => createHmac('sha256', secret).update(`${label}\0${scope}`).digest();
  return {
    iterations: options.iterations ?? DEFAULT_SCRAM_ITERATIONS,
    salt: derive('salt').subarray(0, DEFAULT_SALT_LENGTH),
    storedKey: derive('stored-key'),
    serverKey: derive('server-key'),
  };
}
