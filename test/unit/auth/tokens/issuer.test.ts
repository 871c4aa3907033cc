import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { JWTPayload } from 'jose';
import { IssuerKeys, type IssuerKeysOptions } from '../../../../src/auth/tokens/issuer.js';
import { IssuerUnavailable } from '../../../../src/auth/tokens/issuer-unavailable.js';
import { TokenRejected, verifyAccessToken, type TokenRejectReason } from '../../../../src/auth/tokens/verify.js';
import { createThrowawayCa } from '../../../../support/oidc.js';
import { makeKey, sign, startStaticIssuer, type StaticIssuer, type TestKey } from './static-issuer.js';

const AUDIENCE = 'api://pgwarden';
const now = (): number => Math.floor(Date.now() / 1000);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let idp: StaticIssuer;
let k1: TestKey;
let k2: TestKey;
let ec: TestKey;

const claims = (): JWTPayload => ({ iss: idp.issuer, aud: AUDIENCE, oid: 'o', exp: now() + 300 });
const issuerKeys = (extra: IssuerKeysOptions = {}): IssuerKeys => new IssuerKeys(idp.issuer, { ca: idp.caPem, ...extra });

async function outcome(keys: IssuerKeys, token: string): Promise<TokenRejectReason | 'ok'> {
  try {
    await verifyAccessToken(token, { issuer: keys, audience: AUDIENCE });
    return 'ok';
  } catch (err) {
    if (err instanceof TokenRejected) return err.reason;
    throw err;
  }
}

before(async () => {
  [k1, k2, ec] = await Promise.all([makeKey('RS256'), makeKey('RS256'), makeKey('ES256')]);
  idp = await startStaticIssuer();
});
after(() => idp.close());
beforeEach(() => {
  idp.jwks = { keys: [k1.jwk, ec.jwk] };
  idp.discovery = { issuer: idp.issuer, jwks_uri: `${idp.issuer}/jwks` };
  idp.hang = false;
  idp.status = 200;
});

describe('IssuerKeys: configuration', () => {
  it('refuses an issuer that is not an https URL without query or fragment', () => {
    assert.throws(() => new IssuerKeys('http://127.0.0.1/'), TypeError);
    assert.throws(() => new IssuerKeys('not a url'), TypeError);
    assert.throws(() => new IssuerKeys('https://idp.example/?tenant=1'), TypeError);
    assert.throws(() => new IssuerKeys('https://idp.example/#x'), TypeError);
    assert.throws(() => new IssuerKeys('https://idp.example', { refreshIntervalSeconds: -1 }), RangeError);
  });

  it('load() fetches discovery then the JWKS and reports status', async () => {
    const keys = issuerKeys();
    const before = { ...idp.fetches };
    await keys.load();
    assert.equal(idp.fetches.discovery, before.discovery + 1);
    assert.equal(idp.fetches.jwks, before.jwks + 1);
    const s = keys.status();
    assert.equal(s.jwksUri, `${idp.issuer}/jwks`);
    assert.equal(s.keys, 2);
    assert.equal(s.fetches, 2);
    assert.equal(s.lastError, null);
    assert.ok(s.refreshedAt instanceof Date);
  });
});

describe('IssuerKeys: discovery and JWKS are checked', () => {
  async function unavailable(extra: IssuerKeysOptions = {}): Promise<string> {
    const keys = issuerKeys(extra);
    await assert.rejects(keys.load(), IssuerUnavailable);
    assert.equal(await outcome(keys, await sign(k1, claims())), 'issuer-unavailable');
    return keys.status().lastError ?? '';
  }

  it('discovery issuer must equal the configured issuer exactly', async () => {
    idp.discovery = { issuer: `${idp.issuer}/`, jwks_uri: `${idp.issuer}/jwks` };
    assert.match(await unavailable(), /discovery issuer/);
    idp.discovery = { jwks_uri: `${idp.issuer}/jwks` };
    assert.match(await unavailable(), /discovery issuer/);
  });

  it('jwks_uri must be https', async () => {
    idp.discovery = { issuer: idp.issuer, jwks_uri: `http://127.0.0.1:1/jwks` };
    assert.match(await unavailable(), /jwks_uri/);
    idp.discovery = { issuer: idp.issuer };
    assert.match(await unavailable(), /jwks_uri/);
  });

  it('the TLS certificate must chain to the given CA (or the system roots)', async () => {
    const other = await createThrowawayCa('another CA');
    await assert.rejects(issuerKeys({ ca: other.certPem }).load(), IssuerUnavailable);
    await assert.rejects(new IssuerKeys(idp.issuer).load(), IssuerUnavailable);
  });

  it('discovery larger than 64 KiB', async () => {
    idp.discovery = { issuer: idp.issuer, jwks_uri: `${idp.issuer}/jwks`, pad: 'x'.repeat(64 * 1024) };
    assert.match(await unavailable(), /larger than 65536/);
  });

  it('JWKS larger than 256 KiB', async () => {
    idp.jwks = { keys: [k1.jwk], pad: 'x'.repeat(256 * 1024) };
    assert.match(await unavailable(), /larger than 262144/);
  });

  it('more than 100 keys', async () => {
    idp.jwks = { keys: Array.from({ length: 101 }, (_, i) => ({ ...k1.jwk, kid: `k${i}` })) };
    assert.match(await unavailable(), /101 keys/);
    idp.jwks = { keys: Array.from({ length: 3 }, (_, i) => ({ ...k1.jwk, kid: `k${i}` })) };
    assert.match(await unavailable({ maxKeys: 2 }), /3 keys/);
  });

  it('not JSON, not a JWKS, HTTP errors, redirects', async () => {
    idp.jwks = '<html>';
    assert.match(await unavailable(), /not JSON/);
    idp.jwks = { keys: 'nope' };
    assert.match(await unavailable(), /"keys" array/);
    idp.jwks = { keys: [k1.jwk] };
    idp.status = 500;
    assert.match(await unavailable(), /HTTP status 500/);
    idp.status = 302;
    assert.match(await unavailable(), /HTTP status 302/);
  });

  it('a provider that never answers times out', async () => {
    idp.hang = true;
    const t0 = Date.now();
    assert.match(await unavailable({ timeoutMs: 200, refreshIntervalSeconds: 60 }), /within 200 ms/);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('unusable keys are skipped: encryption, private, RSA < 2048 bits, other curves, alg mismatch, no material', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const smallKey = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const small = { ...smallKey, kid: 'small', use: 'sig' };
    const p384 = await makeKey('ES384');
    const ed = await makeKey('EdDSA');
    idp.jwks = {
      keys: [
        { ...k1.jwk, kid: 'enc', use: 'enc' },
        { ...k1.jwk, kid: 'ops', key_ops: ['encrypt'] },
        { ...k1.jwk, kid: 'private', d: 'AAAA' },
        small,
        p384.jwk,
        ed.jwk,
        { ...k1.jwk, kid: 'hs', alg: 'HS256' },
        { kty: 'RSA', kid: 'empty' },
        { kty: 'oct', kid: 'oct', k: 'c2VjcmV0' },
        { ...k1.jwk, kid: 12 },
        'junk',
        null,
        k2.jwk,
      ],
    };
    const keys = issuerKeys();
    await keys.load();
    assert.equal(keys.status().keys, 1);
    assert.equal(await outcome(keys, await sign(k2, claims())), 'ok');
    for (const kid of ['enc', 'ops', 'private', 'hs', 'empty', 'small']) {
      assert.equal(await outcome(keys, await sign(k1, claims(), { kid })), 'unknown-kid', kid);
    }
  });

  it("a key's alg restricts it: an RS256 key is not used for PS256", async () => {
    idp.jwks = { keys: [{ ...k1.jwk, alg: 'RS256' }] };
    const keys = issuerKeys();
    assert.equal(await outcome(keys, await sign(k1, claims())), 'ok');
    assert.equal(await outcome(keys, await sign(k1, claims(), { alg: 'PS256' })), 'algorithm');
  });

  it('a token without kid is refused when several keys could verify it', async () => {
    idp.jwks = { keys: [k1.jwk, k2.jwk] };
    assert.equal(await outcome(issuerKeys(), await sign(k1, claims(), { kid: undefined })), 'unknown-kid');
  });
});

describe('IssuerKeys: caching, refresh and rotation', () => {
  it('verifications use the cached set: no fetch per token', async () => {
    const keys = issuerKeys();
    const token = await sign(k1, claims());
    assert.equal(await outcome(keys, token), 'ok');
    const fetched = idp.fetches.jwks;
    for (let i = 0; i < 50; i++) assert.equal(await outcome(keys, token), 'ok');
    assert.equal(idp.fetches.jwks, fetched);
  });

  it('unknown kids refetch the JWKS at most once per interval, however many arrive', async () => {
    const keys = issuerKeys({ refreshIntervalSeconds: 0.4 });
    const bogus = await Promise.all(Array.from({ length: 200 }, (_, i) => sign(k1, claims(), { kid: `bogus-${i}` })));
    await keys.load();
    const start = idp.fetches.jwks;
    const results = await Promise.all(bogus.map((t) => outcome(keys, t)));
    assert.ok(results.every((r) => r === 'unknown-kid'));
    assert.equal(idp.fetches.jwks - start, 0, 'load() just fetched: still inside the interval');
    await sleep(450);
    const again = await Promise.all(bogus.map((t) => outcome(keys, t)));
    assert.ok(again.every((r) => r === 'unknown-kid'));
    assert.equal(idp.fetches.jwks - start, 1, 'concurrent unknown kids share one refetch');
    assert.equal(idp.fetches.discovery >= 1, true);
  });

  it('rotation: a new key is picked up on its first token, a removed key stops verifying', async () => {
    const keys = issuerKeys({ refreshIntervalSeconds: 0.2 });
    const old = await sign(k1, claims());
    assert.equal(await outcome(keys, old), 'ok');
    await sleep(250);
    idp.jwks = { keys: [k2.jwk] };
    assert.equal(await outcome(keys, await sign(k2, claims())), 'ok');
    assert.equal(await outcome(keys, old), 'unknown-kid');
  });

  it('a new key right after a refetch waits for the interval', async () => {
    const keys = issuerKeys({ refreshIntervalSeconds: 0.3 });
    const token = await sign(k2, claims());
    await keys.load();
    idp.jwks = { keys: [k1.jwk, k2.jwk] };
    assert.equal(await outcome(keys, token), 'unknown-kid');
    await sleep(350);
    assert.equal(await outcome(keys, token), 'ok');
  });

  it('keys older than maxAgeSeconds are refetched: removal is seen without an unknown kid', async () => {
    const keys = issuerKeys({ refreshIntervalSeconds: 0, maxAgeSeconds: 0.2 });
    const token = await sign(k1, claims());
    assert.equal(await outcome(keys, token), 'ok');
    idp.jwks = { keys: [k2.jwk] };
    assert.equal(await outcome(keys, token), 'ok', 'still fresh');
    await sleep(250);
    assert.equal(await outcome(keys, token), 'unknown-kid');
  });

  it('a failed refresh keeps the keys held; an unknown kid then is issuer-unavailable', async () => {
    const keys = issuerKeys({ refreshIntervalSeconds: 0, maxAgeSeconds: 0 });
    const token = await sign(k1, claims());
    assert.equal(await outcome(keys, token), 'ok');
    idp.status = 503;
    await sleep(5);
    assert.equal(await outcome(keys, token), 'ok');
    assert.match(keys.status().lastError ?? '', /503/);
    assert.equal(await outcome(keys, await sign(k2, claims())), 'issuer-unavailable');
    idp.status = 200;
    idp.jwks = { keys: [k1.jwk, k2.jwk] };
    assert.equal(await outcome(keys, await sign(k2, claims())), 'ok');
    assert.equal(keys.status().lastError, null);
  });

  it('an unreachable issuer is retried at most once per interval', async () => {
    idp.status = 503;
    const keys = issuerKeys({ refreshIntervalSeconds: 60 });
    const start = { ...idp.fetches };
    const token = await sign(k1, claims());
    for (let i = 0; i < 20; i++) assert.equal(await outcome(keys, token), 'issuer-unavailable');
    assert.equal(idp.fetches.discovery - start.discovery, 1);
  });

  it('discovery is redone when the JWKS fetch fails (the JWKS may have moved)', async () => {
    const keys = issuerKeys({ refreshIntervalSeconds: 0, maxAgeSeconds: 0 });
    await keys.load();
    const d0 = idp.fetches.discovery;
    await sleep(5);
    assert.equal(await outcome(keys, await sign(k1, claims())), 'ok');
    assert.equal(idp.fetches.discovery, d0, 'JWKS refreshed without rediscovery');
    idp.status = 404;
    await sleep(5);
    assert.equal(await outcome(keys, await sign(k1, claims())), 'ok', 'held keys still verify');
    idp.status = 200;
    await sleep(5);
    assert.equal(await outcome(keys, await sign(k1, claims())), 'ok');
    assert.ok(idp.fetches.discovery > d0);
  });
});
