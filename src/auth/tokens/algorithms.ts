// The only JWS algorithms a token may use. Everything else (none, HS*, RS384, EdDSA, ...) is
// refused before any key is looked up, which also rules out the HS256-with-the-RSA-public-key
// confusion: no HMAC algorithm is ever run.

export const ALLOWED_ALGORITHMS = ['RS256', 'PS256', 'ES256'] as const;

export type AllowedAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];

export function isAllowedAlgorithm(alg: unknown): alg is AllowedAlgorithm {
  return alg === 'RS256' || alg === 'PS256' || alg === 'ES256';
}
