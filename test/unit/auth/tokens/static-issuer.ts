// A minimal issuer for unit tests: a real HTTPS server on 127.0.0.1 (certificate from a throwaway
// CA) serving a discovery document and a JWKS that the test sets and breaks at will (wrong issuer,
// oversize, slow, non-JSON, redirects). Not an OpenID provider: support/oidc.ts is the real one.

import { createPrivateKey, createSign, randomBytes, type JsonWebKey } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { base64url, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTHeaderParameters, type JWTPayload } from 'jose';
import { createThrowawayCa, localhostCertificate } from '../../../../support/oidc.js';

export interface TestKey {
  readonly alg: string;
  readonly kid: string;
  /** The private JWK (no kid), imported for whichever alg a token names. */
  readonly privateJwk: JWK;
  /** The public JWK as published (kid, use: sig). */
  readonly jwk: JWK;
}

export async function makeKey(alg: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomBytes(6).toString('hex');
  return { alg, kid, privateJwk: await exportJWK(privateKey), jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } };
}

/** Signs exactly `claims`; the header gets the key's alg and kid unless given. */
export async function sign(key: TestKey, claims: JWTPayload, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  const h: JWTHeaderParameters = { alg: key.alg, kid: key.kid, ...header };
  if (h.kid === undefined) delete h.kid;
  return new SignJWT(claims).setProtectedHeader(h).sign(await importJWK(key.privateJwk, h.alg));
}

/**
 * RS256 over any header and payload text, with node:crypto (jose refuses to produce some of the
 * tokens tests need, e.g. unknown crit parameters). `payload` is used as is when a string.
 */
export function signRaw(key: TestKey, header: Record<string, unknown>, payload: JWTPayload | string, digest = 'sha256'): string {
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(typeof payload === 'string' ? payload : JSON.stringify(payload))}`;
  const pem = createPrivateKey({ key: key.privateJwk as JsonWebKey, format: 'jwk' });
  return `${input}.${base64url.encode(createSign(digest).update(input).sign(pem))}`;
}

export interface StaticIssuer {
  readonly issuer: string;
  readonly caPem: string;
  /** Served at /jwks: an object (JSON-encoded) or raw text. */
  jwks: unknown;
  /** Served at /.well-known/openid-configuration; default { issuer, jwks_uri }. */
  discovery: unknown;
  /** When set, requests get no answer at all. */
  hang: boolean;
  /** Status for every answer (default 200); 302 sends a Location to the same path. */
  status: number;
  readonly fetches: { discovery: number; jwks: number };
  close(): Promise<void>;
}

export async function startStaticIssuer(keys: readonly JWK[] = []): Promise<StaticIssuer> {
  const ca = await createThrowawayCa();
  const tls = await localhostCertificate(ca);
  const server = createServer({ cert: tls.certPem, key: tls.keyPem });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const state: StaticIssuer = {
    issuer,
    caPem: ca.certPem,
    jwks: { keys: [...keys] },
    discovery: { issuer, jwks_uri: `${issuer}/jwks` },
    hang: false,
    status: 200,
    fetches: { discovery: 0, jwks: 0 },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('request', (req, res) => {
    let body: unknown;
    if (req.url === '/.well-known/openid-configuration') {
      state.fetches.discovery++;
      body = state.discovery;
    } else if (req.url === '/jwks') {
      state.fetches.jwks++;
      body = state.jwks;
    } else {
      res.statusCode = 404;
      res.end();
      return;
    }
    if (state.hang) return;
    res.statusCode = state.status;
    if (state.status >= 300 && state.status < 400) res.setHeader('location', req.url ?? '/');
    res.setHeader('content-type', 'application/json');
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  return state;
}
