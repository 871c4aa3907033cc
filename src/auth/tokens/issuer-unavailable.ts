// The issuer's discovery document or JWKS could not be fetched, or was not acceptable.

export class IssuerUnavailable extends Error {
  override readonly name = 'IssuerUnavailable';
}
