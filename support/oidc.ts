// A real OpenID Connect provider for tests: `oidc-provider` served over HTTPS on 127.0.0.1 (an
// ephemeral port) with a certificate from a throwaway CA made here. It issues JWT access tokens
// through the client-credentials grant (resource indicators: the requested resource is the
// audience), with `oid` and `groups` claims per client, and signs with an RSA (RS256, PS256) and an
// EC P-256 (ES256) key that rotateKeys() replaces at runtime: the HTTPS server and its issuer stay,
// a new Provider with the new keys takes over the requests. JWKS and discovery requests are
// counted. For tokens the provider would never issue (expired, bad claims, wrong key...),
// signWithProviderKey() signs any claims with the provider's current private key.

import 'reflect-metadata'; // @peculiar/x509 needs it loaded first
import { createPublicKey, randomBytes, webcrypto, type JsonWebKey } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload, type JWTHeaderParameters } from 'jose';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type SigningAlgorithm = 'RS256' | 'PS256' | 'ES256';

export interface OidcClient {
  readonly clientId: string;
  /** Default: random. */
  readonly clientSecret?: string;
  /** Default: `oid-{clientId}`. */
  readonly oid?: string;
  /** Default: []. */
  readonly groups?: readonly string[];
}

export interface StartOidcProviderOptions {
  /** Default: one client `app` with oid `oid-app` and groups ['group-a']. */
  readonly clients?: readonly OidcClient[];
  /** alg of issued tokens when issueToken is not told. Default RS256. */
  readonly defaultAlg?: SigningAlgorithm;
  /** Access token lifetime. Default 600 s. */
  readonly tokenTtlSeconds?: number;
}

export interface IssueTokenRequest {
  readonly clientId: string;
  readonly audience: string;
  readonly alg?: SigningAlgorithm;
}

export interface OidcProviderHandle {
  /** `https://127.0.0.1:{port}`: the discovery document's issuer and every token's iss. */
  readonly issuer: string;
  /** The throwaway CA that signed the server certificate. */
  readonly caPem: string;
  /** An access token from the real token endpoint (client credentials, client_secret_basic). */
  issueToken(req: IssueTokenRequest): Promise<string>;
  /** Replaces the signing keys (RSA and EC) by new ones; tokens issued before carry kids that are gone. */
  rotateKeys(): Promise<void>;
  /** Signs exactly these claims with the current private key for header.alg (default RS256); kid added unless header has one (kid: undefined omits it). */
  signWithProviderKey(claims: JWTPayload, header?: Partial<JWTHeaderParameters>): Promise<string>;
  /** The current public keys (with kid). */
  publicKeys(): { readonly rsa: JWK; readonly ec: JWK };
  /** Requests to the JWKS endpoint so far. */
  readonly jwksFetches: number;
  /** Requests to the discovery document so far. */
  readonly discoveryFetches: number;
  close(): Promise<void>;
}

// ---- oidc-provider, typed here for the little this file uses (no @types/oidc-provider installed)

interface OidcContext {
  get(header: string): string;
}
interface ResourceServerInfo {
  scope: string;
  audience: string;
  accessTokenTTL: number;
  accessTokenFormat: 'jwt';
  jwt: { sign: { alg: SigningAlgorithm } };
}
interface ProviderConfiguration {
  adapter: () => MemoryStore;
  clients: Array<Record<string, unknown>>;
  jwks: { keys: JWK[] };
  cookies: { keys: string[] };
  ttl: Record<string, number>;
  features: Record<string, unknown>;
  extraTokenClaims: (ctx: OidcContext, token: { clientId?: string }) => Promise<Record<string, unknown>>;
}
/** oidc-provider's storage interface; an in-memory one here (each Provider instance its own). */
class MemoryStore {
  private readonly items = new Map<string, Record<string, unknown>>();
  async upsert(id: string, payload: Record<string, unknown>): Promise<void> {
    this.items.set(id, payload);
  }
  async find(id: string): Promise<Record<string, unknown> | undefined> {
    return this.items.get(id);
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const item = this.items.get(id);
    if (item !== undefined) item['consumed'] = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    this.items.delete(id);
  }
  async revokeByGrantId(): Promise<void> {}
}
interface OidcProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
type ProviderConstructor = new (issuer: string, configuration: ProviderConfiguration) => OidcProviderInstance;

const OIDC_PROVIDER_MODULE: string = 'oidc-provider';
let providerClass: Promise<ProviderConstructor> | undefined;

function loadProvider(): Promise<ProviderConstructor> {
  providerClass ??= import(OIDC_PROVIDER_MODULE).then((m: { default: ProviderConstructor }) => m.default);
  return providerClass;
}

// ---- a throwaway CA and the server's certificate

export interface ThrowawayCa {
  readonly certPem: string;
  readonly cert: x509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
}

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A fresh self-signed CA (ECDSA P-256), valid for a day. */
export async function createThrowawayCa(commonName = 'pgwarden test OIDC CA'): Promise<ThrowawayCa> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), cert, key: keys.privateKey };
}

/** A server certificate for 127.0.0.1 (IP SAN) signed by `ca`. */
export async function localhostCertificate(ca: ThrowawayCa): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: 'CN=127.0.0.1',
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: EC_SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await pkcs8Pem(keys.privateKey) };
}

// ---- signing keys

interface SigningKeys {
  readonly rsa: JWK; // private, with kid
  readonly ec: JWK; // private, with kid
}

async function newSigningKeys(): Promise<SigningKeys> {
  const make = async (alg: 'RS256' | 'ES256'): Promise<JWK> => {
    const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
    return { ...(await exportJWK(privateKey)), kid: randomBytes(9).toString('base64url'), use: 'sig' };
  };
  return { rsa: await make('RS256'), ec: await make('ES256') };
}

function publicPart(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = jwk;
  return rest;
}

// ---- the provider

const AUDIENCE_URN = 'urn:pgwarden-test:audience:';

/** Resource indicators must be absolute URIs; audiences need not be (Entra uses bare GUIDs). */
function resourceFor(audience: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(audience) && !audience.includes('#') ? audience : AUDIENCE_URN + encodeURIComponent(audience);
}

function audienceOf(resource: string): string {
  return resource.startsWith(AUDIENCE_URN) ? decodeURIComponent(resource.slice(AUDIENCE_URN.length)) : resource;
}

function postForm(url: string, form: Record<string, string>, headers: Record<string, string>, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = new URLSearchParams(form).toString();
    const req = request(
      url,
      {
        method: 'POST',
        ca,
        agent: false,
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function startOidcProvider(options: StartOidcProviderOptions = {}): Promise<OidcProviderHandle> {
  const Provider = await loadProvider();
  const clients = (options.clients ?? [{ clientId: 'app', oid: 'oid-app', groups: ['group-a'] }]).map((c) => ({
    clientId: c.clientId,
    clientSecret: c.clientSecret ?? randomBytes(24).toString('base64url'),
    oid: c.oid ?? `oid-${c.clientId}`,
    groups: [...(c.groups ?? [])],
  }));
  const byId = new Map(clients.map((c) => [c.clientId, c]));
  const defaultAlg = options.defaultAlg ?? 'RS256';
  const ttl = options.tokenTtlSeconds ?? 600;

  const ca = await createThrowawayCa();
  const tls = await localhostCertificate(ca);
  let keys = await newSigningKeys();
  // the next set is made ahead, so rotateKeys() itself is quick (RSA key generation is not)
  let nextKeys = newSigningKeys();
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  let jwksFetches = 0;
  let discoveryFetches = 0;

  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/jwks') jwksFetches++;
    if (path === '/.well-known/openid-configuration') discoveryFetches++;
    if (handler === null) {
      res.statusCode = 503;
      res.end();
    } else {
      handler(req, res);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cookieKey = randomBytes(32).toString('base64url');

  const build = (signing: SigningKeys): OidcProviderInstance =>
    new Provider(issuer, {
      clients: clients.map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      })),
      jwks: { keys: [signing.rsa, signing.ec] },
      adapter: () => new MemoryStore(),
      cookies: { keys: [cookieKey] },
      ttl: { ClientCredentials: ttl },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => undefined,
          useGrantedResource: () => true,
          getResourceServerInfo: (ctx: OidcContext, resource: string): ResourceServerInfo => {
            const requested = ctx.get('x-test-alg');
            const alg: SigningAlgorithm = requested === 'RS256' || requested === 'PS256' || requested === 'ES256' ? requested : defaultAlg;
            return { scope: 'db', audience: audienceOf(resource), accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
          },
        },
      },
      extraTokenClaims: async (_ctx, token) => {
        const client = token.clientId === undefined ? undefined : byId.get(token.clientId);
        return client === undefined ? {} : { oid: client.oid, groups: client.groups };
      },
    });
  handler = build(keys).callback();

  return {
    issuer,
    caPem: ca.certPem,
    get jwksFetches() {
      return jwksFetches;
    },
    get discoveryFetches() {
      return discoveryFetches;
    },
    async issueToken(req: IssueTokenRequest): Promise<string> {
      const client = byId.get(req.clientId);
      if (client === undefined) throw new Error(`unknown test client ${req.clientId}`);
      const basic = Buffer.from(`${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`).toString('base64');
      const { status, body } = await postForm(
        `${issuer}/token`,
        { grant_type: 'client_credentials', resource: resourceFor(req.audience), scope: 'db' },
        { authorization: `Basic ${basic}`, 'x-test-alg': req.alg ?? defaultAlg },
        ca.certPem,
      );
      if (status !== 200) throw new Error(`token endpoint answered ${status}: ${body}`);
      const token = (JSON.parse(body) as { access_token?: unknown }).access_token;
      if (typeof token !== 'string') throw new Error(`token endpoint gave no access_token: ${body}`);
      return token;
    },
    async rotateKeys(): Promise<void> {
      keys = await nextKeys;
      nextKeys = newSigningKeys();
      handler = build(keys).callback();
    },
    async signWithProviderKey(claims: JWTPayload, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
      const alg = header.alg ?? 'RS256';
      const jwk = alg.startsWith('ES') ? keys.ec : keys.rsa;
      const protectedHeader: JWTHeaderParameters = { ...header, alg };
      if (!('kid' in header)) protectedHeader.kid = jwk.kid;
      if (protectedHeader.kid === undefined) delete protectedHeader.kid;
      const key = await importJWK({ ...jwk, alg: undefined, use: undefined }, alg);
      return new SignJWT(claims).setProtectedHeader(protectedHeader).sign(key);
    },
    publicKeys() {
      return { rsa: publicPart(keys.rsa), ec: publicPart(keys.ec) };
    },
    async close(): Promise<void> {
      handler = null;
      await nextKeys;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The RSA public key as PEM (SPKI), e.g. to forge the classic HS256-with-the-public-key token. */
export function rsaPublicKeyPem(jwk: JWK): string {
  return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}
