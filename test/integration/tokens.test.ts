// Token verification against a real OpenID Connect provider (oidc-provider over HTTPS with a
// throwaway CA): access tokens from its token endpoint (client credentials), its discovery
// document and its JWKS, including key rotation at the provider.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { base64url, decodeJwt, decodeProtectedHeader, SignJWT, type JWTPayload } from 'jose';
import { IssuerKeys, type IssuerKeysOptions } from '../../src/auth/tokens/issuer.js';
import { IssuerUnavailable } from '../../src/auth/tokens/issuer-unavailable.js';
import { TokenRejected, verifyAccessToken, type TokenRejectReason } from '../../src/auth/tokens/verify.js';
import { createThrowawayCa, rsaPublicKeyPem, startOidcProvider, type OidcProviderHandle } from '../../support/oidc.js';

const AUDIENCE = 'api://pgwarden';
const now = (): number => Math.floor(Date.now() / 1000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const CLIENTS = [
  { clientId: 'app', oid: '6f1c2b9e-0000-4000-8000-000000000001', groups: [] },
  { clientId: 'reporting', oid: '6f1c2b9e-0000-4000-8000-000000000002', groups: ['3c5d0000-0000-4000-8000-0000000000aa', 'readers'] },
];

async function reason(token: string, keys: IssuerKeys, audience = AUDIENCE): Promise<TokenRejectReason> {
  try {
    await verifyAccessToken(token, { issuer: keys, audience });
  } catch (err) {
    assert.ok(err instanceof TokenRejected, String(err));
    for (const part of token.split('.')) if (part.length > 16) assert.ok(!err.message.includes(part), 'message leaks the token');
    return err.reason;
  }
  assert.fail('token accepted');
}

describe('tokens from a real OpenID Connect provider', () => {
  let idp: OidcProviderHandle;
  let keys: IssuerKeys;
  const valid = (overrides: JWTPayload = {}): JWTPayload => ({
    iss: idp.issuer,
    aud: AUDIENCE,
    sub: 'app',
    oid: CLIENTS[0]!.oid,
    iat: now(),
    exp: now() + 300,
    ...overrides,
  });

  before(async () => {
    idp = await startOidcProvider({ clients: CLIENTS });
    keys = new IssuerKeys(idp.issuer, { ca: idp.caPem });
  });
  after(() => idp.close());

  for (const alg of ['RS256', 'PS256', 'ES256'] as const) {
    it(`a valid ${alg} access token gives the object id, subject and groups`, async () => {
      const token = await idp.issueToken({ clientId: 'app', audience: AUDIENCE, alg });
      assert.equal(decodeProtectedHeader(token).alg, alg);
      const v = await verifyAccessToken(token, { issuer: keys, audience: AUDIENCE });
      assert.equal(v.objectId, CLIENTS[0]!.oid);
      assert.equal(v.subject, 'app');
      assert.deepEqual(v.groups, []);
      assert.equal(v.issuer, idp.issuer);
      assert.equal(v.audience, AUDIENCE);
      assert.equal(v.expiresAt.getTime(), decodeJwt(token).exp! * 1000);
      assert.ok(v.expiresAt.getTime() > Date.now());
    });
  }

  it('the groups claim of a client in groups', async () => {
    const v = await verifyAccessToken(await idp.issueToken({ clientId: 'reporting', audience: AUDIENCE }), { issuer: keys, audience: AUDIENCE });
    assert.equal(v.objectId, CLIENTS[1]!.oid);
    assert.deepEqual(v.groups, CLIENTS[1]!.groups);
  });

  it('an audience that is not a URI (a bare application id, as Entra issues)', async () => {
    const aud = '0f6e7a3c-1111-4222-8333-444455556666';
    const v = await verifyAccessToken(await idp.issueToken({ clientId: 'app', audience: aud }), { issuer: keys, audience: aud });
    assert.equal(v.audience, aud);
  });

  it("objectIdClaim 'sub' for providers without oid", async () => {
    const v = await verifyAccessToken(await idp.issueToken({ clientId: 'app', audience: AUDIENCE }), {
      issuer: keys,
      audience: AUDIENCE,
      objectIdClaim: 'sub',
    });
    assert.equal(v.objectId, 'app');
  });

  it('a valid token signed by signWithProviderKey verifies (the forgeries below differ by one thing)', async () => {
    await verifyAccessToken(await idp.signWithProviderKey(valid()), { issuer: keys, audience: AUDIENCE });
    await verifyAccessToken(await idp.signWithProviderKey(valid(), { alg: 'ES256' }), { issuer: keys, audience: AUDIENCE });
  });

  it('rejected: expired', async () => {
    assert.equal(await reason(await idp.signWithProviderKey(valid({ iat: now() - 900, exp: now() - 300 })), keys), 'expired');
  });

  it('rejected: not yet valid', async () => {
    assert.equal(await reason(await idp.signWithProviderKey(valid({ nbf: now() + 600 })), keys), 'not-yet-valid');
  });

  it('rejected: issued in the future', async () => {
    assert.equal(await reason(await idp.signWithProviderKey(valid({ iat: now() + 600, exp: now() + 900 })), keys), 'issued-in-future');
  });

  it('rejected: no exp', async () => {
    assert.equal(await reason(await idp.signWithProviderKey(valid({ exp: undefined })), keys), 'no-expiry');
  });

  it('rejected: wrong audience (a real token for another resource)', async () => {
    assert.equal(await reason(await idp.issueToken({ clientId: 'app', audience: 'api://another-service' }), keys), 'audience');
  });

  it('rejected: wrong issuer', async () => {
    assert.equal(await reason(await idp.signWithProviderKey(valid({ iss: 'https://login.example.com/tenant/v2.0' })), keys), 'issuer');
    assert.equal(await reason(await idp.signWithProviderKey(valid({ iss: `${idp.issuer}/` })), keys), 'issuer');
  });

  it('rejected: no object id', async () => {
    assert.equal(await reason(await idp.signWithProviderKey(valid({ oid: undefined })), keys), 'no-object-id');
  });

  it('rejected: alg none', async () => {
    const token = await idp.issueToken({ clientId: 'app', audience: AUDIENCE });
    const [h, p] = token.split('.') as [string, string];
    const header = { ...decodeProtectedHeader(token), alg: 'none' };
    assert.equal(await reason(`${base64url.encode(JSON.stringify(header))}.${p}.`, keys), 'algorithm');
    assert.equal(await reason(`${h}.${p}.`, keys), 'signature');
  });

  it('rejected: HS256 signed with the RSA public key as the secret', async () => {
    const rsa = idp.publicKeys().rsa;
    const secret = new TextEncoder().encode(rsaPublicKeyPem(rsa));
    const token = await new SignJWT(valid()).setProtectedHeader({ alg: 'HS256', kid: rsa.kid!, typ: 'at+jwt' }).sign(secret);
    assert.equal(await reason(token, keys), 'algorithm');
  });

  it('rejected: tampered payload', async () => {
    const token = await idp.issueToken({ clientId: 'app', audience: AUDIENCE });
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as JWTPayload;
    const forged = base64url.encode(JSON.stringify({ ...claims, oid: CLIENTS[1]!.oid, groups: ['admins'] }));
    assert.equal(await reason(`${h}.${forged}.${s}`, keys), 'signature');
  });

  it('rejected: a key (kid) the provider does not publish, even after a refresh', async () => {
    const before = idp.jwksFetches;
    const fresh = new IssuerKeys(idp.issuer, { ca: idp.caPem, refreshIntervalSeconds: 0 });
    assert.equal(await reason(await idp.signWithProviderKey(valid(), { kid: 'not-a-provider-kid' }), fresh), 'unknown-kid');
    assert.equal(idp.jwksFetches - before, 2, 'initial fetch, then one refetch for the unknown kid');
  });

  it('rejected: too large, before anything else', async () => {
    const before = idp.jwksFetches + idp.discoveryFetches;
    const fresh = new IssuerKeys(idp.issuer, { ca: idp.caPem });
    assert.equal(await reason(await idp.signWithProviderKey(valid({ pad: 'x'.repeat(17_000) })), fresh), 'too-large');
    assert.equal(idp.jwksFetches + idp.discoveryFetches, before);
  });

  it('discovery over a certificate from another CA fails with issuer-unavailable', async () => {
    const other = await createThrowawayCa('not the provider CA');
    const token = await idp.issueToken({ clientId: 'app', audience: AUDIENCE });
    for (const options of [{ ca: other.certPem }, {}] as IssuerKeysOptions[]) {
      const wrong = new IssuerKeys(idp.issuer, options);
      assert.equal(await reason(token, wrong), 'issuer-unavailable');
      await assert.rejects(wrong.load(), (err: unknown) => err instanceof IssuerUnavailable && /certificate/i.test(err.message));
    }
  });

  it('an issuer configured with a trailing slash does not match the discovery document', async () => {
    const slash = new IssuerKeys(`${idp.issuer}/`, { ca: idp.caPem });
    await assert.rejects(slash.load(), /discovery issuer/);
  });
});

describe('key rotation at the provider', () => {
  let idp: OidcProviderHandle;
  before(async () => {
    idp = await startOidcProvider({ clients: CLIENTS });
  });
  after(() => idp.close());

  it('new tokens verify after rotation without a new IssuerKeys; tokens of the removed keys do not', async () => {
    const keys = new IssuerKeys(idp.issuer, { ca: idp.caPem, refreshIntervalSeconds: 0.2 });
    const oldRs = await idp.issueToken({ clientId: 'app', audience: AUDIENCE, alg: 'RS256' });
    const oldEs = await idp.issueToken({ clientId: 'app', audience: AUDIENCE, alg: 'ES256' });
    await verifyAccessToken(oldRs, { issuer: keys, audience: AUDIENCE });
    await verifyAccessToken(oldEs, { issuer: keys, audience: AUDIENCE });
    const fetchesBefore = idp.jwksFetches;

    await idp.rotateKeys();
    await sleep(250);
    const newRs = await idp.issueToken({ clientId: 'app', audience: AUDIENCE, alg: 'RS256' });
    assert.notEqual(decodeProtectedHeader(newRs).kid, decodeProtectedHeader(oldRs).kid);
    const v = await verifyAccessToken(newRs, { issuer: keys, audience: AUDIENCE });
    assert.equal(v.objectId, CLIENTS[0]!.oid);
    assert.equal(idp.jwksFetches - fetchesBefore, 1, 'one refetch, triggered by the new kid');
    await verifyAccessToken(await idp.issueToken({ clientId: 'app', audience: AUDIENCE, alg: 'ES256' }), { issuer: keys, audience: AUDIENCE });

    // the old keys were dropped by that refresh: still unexpired, the old tokens are refused
    assert.equal(await reason(oldRs, keys), 'unknown-kid');
    assert.equal(await reason(oldEs, keys), 'unknown-kid');
  });

  it('unknown-kid refetches are rate-limited: a flood of bogus kids costs one JWKS request per interval', async () => {
    const keys = new IssuerKeys(idp.issuer, { ca: idp.caPem, refreshIntervalSeconds: 1 });
    const claims = { iss: idp.issuer, aud: AUDIENCE, oid: 'x', exp: now() + 300 };
    const bogus = await Promise.all(Array.from({ length: 300 }, (_, i) => idp.signWithProviderKey(claims, { kid: `bogus-${i}` })));
    const genuine = await idp.issueToken({ clientId: 'app', audience: AUDIENCE });
    await verifyAccessToken(genuine, { issuer: keys, audience: AUDIENCE });
    const start = idp.jwksFetches;
    const firstWave = await Promise.all(bogus.map((t) => reason(t, keys)));
    assert.ok(firstWave.every((r) => r === 'unknown-kid'));
    assert.equal(idp.jwksFetches - start, 0, 'the JWKS was fetched less than 1 s ago');
    await sleep(1050);
    const secondWave = await Promise.all(bogus.map((t) => reason(t, keys)));
    assert.ok(secondWave.every((r) => r === 'unknown-kid'));
    for (const t of bogus.slice(0, 50)) assert.equal(await reason(t, keys), 'unknown-kid');
    assert.equal(idp.jwksFetches - start, 1, '600+ bogus tokens over two intervals: one refetch');
    // genuine tokens are unaffected throughout
    await verifyAccessToken(await idp.issueToken({ clientId: 'app', audience: AUDIENCE }), { issuer: keys, audience: AUDIENCE });
  });

  it('rotation keeping the verifier warm: new keys are seen on the first new-kid token once the interval has passed', async () => {
    const keys = new IssuerKeys(idp.issuer, { ca: idp.caPem, refreshIntervalSeconds: 0.5 });
    await keys.load();
    await idp.rotateKeys();
    const token = await idp.issueToken({ clientId: 'app', audience: AUDIENCE });
    assert.equal(await reason(token, keys), 'unknown-kid', 'inside the interval: not refetched yet');
    await sleep(550);
    await verifyAccessToken(token, { issuer: keys, audience: AUDIENCE });
  });
});
