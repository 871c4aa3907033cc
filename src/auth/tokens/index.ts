// Token login: verifying OpenID Connect access tokens (JWTs) against an issuer's published keys.

export { verifyAccessToken, type VerifiedToken, type VerifyAccessTokenOptions } from './verify.js';
export { IssuerKeys, type IssuerKeysOptions, type IssuerKeysStatus } from './issuer.js';
export { IssuerUnavailable } from './issuer-unavailable.js';
export { TokenRejected, type TokenRejectReason } from './token-rejected.js';
export { ALLOWED_ALGORITHMS, type AllowedAlgorithm } from './algorithms.js';
