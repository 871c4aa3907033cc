// verifyAccessToken: an OpenID Connect access token (a JWT) sent as the password, checked before
// anything else happens with it. In order: size (before any parsing), compact JWS shape, alg in
// RS256/PS256/ES256, the issuer's key for the kid, signature, then claims: iss exact, aud exact,
// exp required, nbf and iat within the clock skew, the object id claim a non-empty string.
// Every refusal is a TokenRejected with a reason code for the audit log.

import { errors, jwtVerify, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { ALLOWED_ALGORITHMS, isAllowedAlgorithm } from './algorithms.js';
import { IssuerUnavailable } from './issuer-unavailable.js';
import type { IssuerKeys } from './issuer.js';
import { quoted, TokenRejected } from './token-rejected.js';

export { TokenRejected, type TokenRejectReason } from './token-rejected.js';

export interface VerifyAccessTokenOptions {
  readonly issuer: IssuerKeys;
  /** The value `aud` must be, or contain. */
  readonly audience: string;
  /** The claim holding the immutable object id. Default 'oid'; 'sub' for providers without oid. */
  readonly objectIdClaim?: string;
  /** Default 'groups'. */
  readonly groupsClaim?: string;
  /** Default 60, and at most 60. */
  readonly clockSkewSeconds?: number;
  /** Default 16384 (16 KiB). */
  readonly maxTokenBytes?: number;
}

export interface VerifiedToken {
  /** The object id claim's value: what principals are bound to. */
  readonly objectId: string;
  /** `sub`, or '' when the token has none. */
  readonly subject: string;
  /** The groups claim's values; [] when the token has none. */
  readonly groups: readonly string[];
  readonly issuer: string;
  /** The configured audience the token was accepted for. */
  readonly audience: string;
  readonly expiresAt: Date;
  readonly claims: Readonly<JWTPayload>;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const ALGORITHMS = [...ALLOWED_ALGORITHMS];
const MAX_OBJECT_ID_LENGTH = 256;
const MAX_CLOCK_SKEW_SECONDS = 60;
const MAX_DATE_SECONDS = 8.64e12; // the largest time a Date can hold

export async function verifyAccessToken(token: string, options: VerifyAccessTokenOptions): Promise<VerifiedToken> {
  const maxBytes = options.maxTokenBytes ?? 16384;
  if (typeof token !== 'string') throw new TokenRejected('malformed', 'token is not a string');
  // UTF-8 never has fewer bytes than UTF-16 code units, so the cheap test comes first.
  if (token.length > maxBytes || Buffer.byteLength(token, 'utf8') > maxBytes) {
    throw new TokenRejected('too-large', `token is larger than ${maxBytes} bytes`);
  }
  if (!COMPACT_JWS.test(token)) throw new TokenRejected('malformed', 'token is not a compact JWS (header.payload.signature)');

  const issuer = options.issuer;
  const skew = options.clockSkewSeconds ?? MAX_CLOCK_SKEW_SECONDS;
  if (!(skew >= 0 && skew <= MAX_CLOCK_SKEW_SECONDS)) throw new RangeError(`clockSkewSeconds must be 0 to ${MAX_CLOCK_SKEW_SECONDS}`);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(
      token,
      (header: JWTHeaderParameters) => {
        // jose has already refused any alg outside ALGORITHMS
        if (!isAllowedAlgorithm(header.alg)) throw new TokenRejected('algorithm', `alg ${quoted(header.alg)} is not allowed`);
        if (header.kid !== undefined && typeof header.kid !== 'string') {
          throw new TokenRejected('malformed', 'kid header is not a string');
        }
        return issuer.keyFor(header.alg, header.kid);
      },
      {
        algorithms: ALGORITHMS,
        issuer: issuer.issuer,
        audience: options.audience,
        clockTolerance: skew,
        requiredClaims: ['exp'],
      },
    ));
  } catch (err) {
    throw rejection(err);
  }

  const exp = payload.exp!;
  if (!(Math.abs(exp) <= MAX_DATE_SECONDS)) throw new TokenRejected('malformed', '"exp" is out of range');
  const now = Date.now() / 1000;
  if (payload.iat !== undefined && payload.iat > now + skew) {
    throw new TokenRejected('issued-in-future', `"iat" is ${Math.round(payload.iat - now)} s in the future`);
  }
  const objectIdClaim = options.objectIdClaim ?? 'oid';
  const objectId = payload[objectIdClaim];
  if (typeof objectId !== 'string' || objectId.length === 0 || objectId.length > MAX_OBJECT_ID_LENGTH) {
    throw new TokenRejected('no-object-id', `claim ${quoted(objectIdClaim)} is not a non-empty string of at most ${MAX_OBJECT_ID_LENGTH} characters`);
  }
  const groupsClaim = options.groupsClaim ?? 'groups';
  const groups = payload[groupsClaim] ?? [];
  if (!Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) {
    throw new TokenRejected('malformed', `claim ${quoted(groupsClaim)} is not an array of strings`);
  }
  return {
    objectId,
    subject: typeof payload.sub === 'string' ? payload.sub : '',
    groups,
    issuer: issuer.issuer,
    audience: options.audience,
    expiresAt: new Date(exp * 1000),
    claims: payload,
  };
}

/** jose's errors (and the key lookup's) as a TokenRejected. */
function rejection(err: unknown): TokenRejected {
  if (err instanceof TokenRejected) return err;
  if (err instanceof IssuerUnavailable) return new TokenRejected('issuer-unavailable', err.message);
  // (JOSENotSupported is an unknown `crit` extension: jose checks crit before alg, and any alg
  // outside the allowed list is JOSEAlgNotAllowed)
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new TokenRejected('algorithm', `alg is not one of ${ALGORITHMS.join(', ')}`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenRejected('signature', 'signature verification failed');
  if (err instanceof errors.JWTExpired) {
    return new TokenRejected('expired', `"exp" ${claimValue(err.payload.exp)} has passed`);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    const missing = err.reason === 'missing';
    if (err.claim === 'exp' && missing) return new TokenRejected('no-expiry', 'token has no "exp" claim');
    if (err.reason === 'check_failed' || missing) {
      if (err.claim === 'iss') return new TokenRejected('issuer', `"iss" ${claimValue(err.payload.iss)} is not the configured issuer`);
      if (err.claim === 'aud') return new TokenRejected('audience', `"aud" ${claimValue(err.payload.aud)} does not hold the configured audience`);
      if (err.claim === 'nbf') return new TokenRejected('not-yet-valid', `"nbf" ${claimValue(err.payload.nbf)} is in the future`);
    }
    return new TokenRejected('malformed', `claim ${quoted(err.claim)}: ${err.message}`);
  }
  if (err instanceof errors.JOSEError) return new TokenRejected('malformed', `${err.code}: ${err.message}`);
  return new TokenRejected('malformed', `token could not be verified: ${err instanceof Error ? err.message : String(err)}`);
}

function claimValue(value: unknown): string {
  return value === undefined ? '(absent)' : quoted(value);
}
