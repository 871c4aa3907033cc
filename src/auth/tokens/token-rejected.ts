// Why a token was refused. The reason code and the message go to the audit event; the client only
// ever sees SPEC.md §4's single "An error occurred while validating the access token..." text.
// Messages never carry the token itself: at most a claim or header value, cut to a short length.

export type TokenRejectReason =
  | 'too-large' // over maxTokenBytes, refused before any parsing
  | 'malformed' // not a compact JWS, bad base64url/JSON, claim of the wrong type
  | 'algorithm' // alg outside RS256/PS256/ES256 (none, HS256, ...), or the key does not fit it
  | 'unknown-kid' // no issuer key for the token's kid, even after a (rate-limited) JWKS refresh
  | 'signature' // signature does not verify (tampered header or payload, wrong key)
  | 'issuer' // iss is not the configured issuer
  | 'audience' // aud does not hold the configured audience
  | 'no-expiry' // exp missing
  | 'expired' // exp passed (beyond the clock skew)
  | 'not-yet-valid' // nbf in the future (beyond the clock skew)
  | 'issued-in-future' // iat in the future (beyond the clock skew)
  | 'no-object-id' // the object id claim is missing, empty or not a string
  | 'issuer-unavailable'; // discovery or JWKS could not be fetched or was invalid

export class TokenRejected extends Error {
  override readonly name = 'TokenRejected';
  readonly reason: TokenRejectReason;

  constructor(reason: TokenRejectReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** A token-supplied value as it may appear in a message: JSON-quoted and cut to 80 characters. */
export function quoted(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}
