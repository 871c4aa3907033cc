import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { base64url, SignJWT, type JWTPayload } from 'jose';
import { IssuerKeys } from '../../../../src/auth/tokens/issuer.js';
import { TokenRejected, verifyAccessToken, type TokenRejectReason, type VerifyAccessTokenOptions } from '../../../../src/auth/tokens/verify.js';
import { makeKey, sign, signRaw, startStaticIssuer, type StaticIssuer, type TestKey } from './static-issuer.js';

const AUDIENCE = 'api://pgwarden';
const now = (): number => Math.floor(Date.now() / 1000);

let idp: StaticIssuer;
let rsa: TestKey;
let ps: TestKey; // another RSA key, used with PS256
let ec: TestKey;
let outsider: TestKey; // not published
let keys: IssuerKeys;

function claims(overrides: JWTPayload = {}): JWTPayload {
  return { iss: idp.issuer, aud: AUDIENCE, sub: 'subject-1', oid: 'object-1', groups: ['g1', 'g2'], iat: now(), exp: now() + 300, ...overrides };
}

function options(extra: Partial<VerifyAccessTokenOptions> = {}): VerifyAccessTokenOptions {
  return { issuer: keys, audience: AUDIENCE, ...extra };
}

async function rejects(token: string, reason: TokenRejectReason, extra: Partial<VerifyAccessTokenOptions> = {}): Promise<TokenRejected> {
  try {
    await verifyAccessToken(token, options(extra));
  } catch (err) {
    assert.ok(err instanceof TokenRejected, `expected TokenRejected, got ${String(err)}`);
    assert.equal(err.reason, reason, `reason (message: ${err.message})`);
    // the audit message never carries the token or any of its segments
    for (const part of token.split('.')) if (part.length > 16) assert.ok(!err.message.includes(part), 'message leaks the token');
    return err;
  }
  assert.fail(`token accepted, expected ${reason}`);
}

const b64json = (value: unknown): string => base64url.encode(JSON.stringify(value));

before(async () => {
  [rsa, ps, ec, outsider] = await Promise.all([makeKey('RS256'), makeKey('PS256'), makeKey('ES256'), makeKey('RS256')]);
  idp = await startStaticIssuer([rsa.jwk, ps.jwk, ec.jwk]);
  keys = new IssuerKeys(idp.issuer, { ca: idp.caPem, refreshIntervalSeconds: 0 });
});
after(() => idp.close());

describe('verifyAccessToken: accepted tokens', () => {
  for (const alg of ['RS256', 'PS256', 'ES256'] as const) {
    it(`${alg} with oid and groups`, async () => {
      const key = alg === 'RS256' ? rsa : alg === 'PS256' ? ps : ec;
      const exp = now() + 300;
      const v = await verifyAccessToken(await sign(key, claims({ exp }), { alg }), options());
      assert.equal(v.objectId, 'object-1');
      assert.equal(v.subject, 'subject-1');
      assert.deepEqual(v.groups, ['g1', 'g2']);
      assert.equal(v.issuer, idp.issuer);
      assert.equal(v.audience, AUDIENCE);
      assert.equal(v.expiresAt.getTime(), exp * 1000);
      assert.equal(v.claims['oid'], 'object-1');
    });
  }

  it('aud as an array holding the audience', async () => {
    await verifyAccessToken(await sign(rsa, claims({ aud: ['other', AUDIENCE] })), options());
  });

  it('RS256 with the PS256 key (an RSA key without alg serves both)', async () => {
    await verifyAccessToken(await sign(ps, claims(), { alg: 'RS256' }), options());
  });

  it('no groups claim gives []; a custom groups claim is read', async () => {
    assert.deepEqual((await verifyAccessToken(await sign(rsa, claims({ groups: undefined })), options())).groups, []);
    const v = await verifyAccessToken(await sign(rsa, claims({ roles: ['r'] })), options({ groupsClaim: 'roles' }));
    assert.deepEqual(v.groups, ['r']);
  });

  it("objectIdClaim 'sub' for providers without oid", async () => {
    const v = await verifyAccessToken(await sign(rsa, claims({ oid: undefined })), options({ objectIdClaim: 'sub' }));
    assert.equal(v.objectId, 'subject-1');
  });

  it('exp, nbf and iat within the 60 s skew', async () => {
    await verifyAccessToken(await sign(rsa, claims({ exp: now() - 30 })), options());
    await verifyAccessToken(await sign(rsa, claims({ nbf: now() + 30 })), options());
    await verifyAccessToken(await sign(rsa, claims({ iat: now() + 30 })), options());
  });

  it('a token without kid when the issuer has exactly one key for its alg', async () => {
    await verifyAccessToken(await sign(ec, claims(), { kid: undefined }), options());
  });
});

describe('verifyAccessToken: refusals', () => {
  it('too-large: checked before any parsing or key fetch', async () => {
    const fetched = { ...idp.fetches };
    await rejects('x'.repeat(16385), 'too-large');
    await rejects('é'.repeat(9000), 'too-large'); // 9000 UTF-16 units, 18000 UTF-8 bytes
    const token = await sign(rsa, claims({ pad: 'p'.repeat(2000) }));
    await rejects(token, 'too-large', { maxTokenBytes: 1000 });
    assert.deepEqual(idp.fetches, fetched);
  });

  it('malformed: not a compact JWS', async () => {
    const good = await sign(rsa, claims());
    const [h, p, s] = good.split('.') as [string, string, string];
    await rejects('', 'malformed');
    await rejects('abc', 'malformed');
    await rejects(`${h}.${p}`, 'malformed');
    await rejects(`${h}.${p}.${s}.x.y`, 'malformed'); // JWE shape
    await rejects(`${h}.${p}.${s}=`, 'malformed');
    await rejects(`${h}.${p}.${s} `, 'malformed');
    await rejects(`${h}..${s}`, 'malformed');
    await rejects(`${b64json('not an object')}.${p}.${s}`, 'malformed');
    await rejects(`${base64url.encode('{bad json')}.${p}.${s}`, 'malformed');
  });

  it('malformed: claims that are not JSON, exp not a number, groups not strings', async () => {
    await rejects(signRaw(rsa, { alg: 'RS256', kid: rsa.kid }, 'nope'), 'malformed');
    await rejects(signRaw(rsa, { alg: 'RS256', kid: rsa.kid }, '[1,2]'), 'malformed');
    await rejects(await sign(rsa, claims({ exp: '2099-01-01' as unknown as number })), 'malformed');
    await rejects(await sign(rsa, claims({ groups: ['ok', 7] })), 'malformed');
    await rejects(await sign(rsa, claims({ groups: 'g1' })), 'malformed');
    await rejects(signRaw(rsa, { alg: 'RS256', kid: rsa.kid }, JSON.stringify(claims()).replace(/"exp":\d+/, '"exp":1e400')), 'malformed');
    await rejects(await sign(rsa, claims({ exp: 1e15 })), 'malformed');
  });

  it('algorithm: alg none', async () => {
    await rejects(`${b64json({ alg: 'none' })}.${b64json(claims())}.`, 'algorithm');
    await rejects(`${b64json({ alg: 'none', kid: rsa.kid })}.${b64json(claims())}.`, 'algorithm');
    await rejects(`${b64json({ alg: 'NONE' })}.${b64json(claims())}.`, 'algorithm');
  });

  it('algorithm: HS256, including HMAC keyed with the RSA public key', async () => {
    const pem = createPublicKey({ key: rsa.jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    const secrets = [
      Buffer.from(pem.export({ type: 'spki', format: 'pem' }).toString()),
      Buffer.from(pem.export({ type: 'pkcs1', format: 'pem' }).toString()),
      pem.export({ type: 'spki', format: 'der' }),
      Buffer.from(JSON.stringify(rsa.jwk)),
    ];
    for (const secret of secrets) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const token = await new SignJWT(claims()).setProtectedHeader({ alg, kid: rsa.kid }).sign(new Uint8Array(secret));
        await rejects(token, 'algorithm');
      }
    }
  });

  it('algorithm: everything outside RS256/PS256/ES256', async () => {
    await rejects(await sign(rsa, claims(), { alg: 'RS384' }), 'algorithm');
    await rejects(await sign(rsa, claims(), { alg: 'RS512' }), 'algorithm');
    await rejects(await sign(rsa, claims(), { alg: 'PS512' }), 'algorithm');
    await rejects(signRaw(rsa, { alg: 'rs256', kid: rsa.kid }, claims()), 'algorithm');
    const p384 = await makeKey('ES384');
    await rejects(await sign(p384, claims()), 'algorithm');
    const ed = await makeKey('EdDSA');
    await rejects(await sign(ed, claims()), 'algorithm');
    await rejects(`${b64json({ alg: 'XX1', kid: rsa.kid })}.${b64json(claims())}.c2ln`, 'algorithm');
  });

  it("algorithm: the kid's key does not fit the alg (ES256 header naming an RSA key)", async () => {
    const token = await sign(ec, claims(), { kid: rsa.kid });
    await rejects(token, 'algorithm');
  });

  it('signature: tampered payload, tampered header, foreign key under a known kid', async () => {
    const good = await sign(rsa, claims());
    const [h, , s] = good.split('.') as [string, string, string];
    await rejects(`${h}.${b64json(claims({ oid: 'someone-else' }))}.${s}`, 'signature');
    const header2 = b64json({ alg: 'RS256', kid: rsa.kid, typ: 'JWT' });
    await rejects(`${header2}.${good.split('.')[1]}.${s}`, 'signature');
    await rejects(await sign(outsider, claims(), { kid: rsa.kid }), 'signature');
    await rejects(`${h}.${good.split('.')[1]}.`, 'signature');
    // an embedded attacker key in the header is ignored, never trusted
    await rejects(await sign(outsider, claims(), { kid: rsa.kid, jwk: outsider.jwk }), 'signature');
  });

  it('signature: ES256 signature in DER form instead of JOSE raw r||s', async () => {
    const good = await sign(ec, claims());
    const [h, p] = good.split('.') as [string, string];
    const { createPrivateKey, createSign } = await import('node:crypto');
    const pem = createPrivateKey({ key: ec.privateJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    const der = createSign('sha256').update(`${h}.${p}`).sign(pem); // DER, as OpenSSL gives it
    await rejects(`${h}.${p}.${base64url.encode(der)}`, 'signature');
  });

  it('unknown-kid: a key the issuer does not publish', async () => {
    const e = await rejects(await sign(outsider, claims()), 'unknown-kid');
    assert.match(e.message, new RegExp(outsider.kid));
  });

  it('malformed: crit header the verifier does not understand', async () => {
    await rejects(signRaw(rsa, { alg: 'RS256', kid: rsa.kid, crit: ['exp-policy'], 'exp-policy': 1 }, claims()), 'malformed');
    await rejects(signRaw(rsa, { alg: 'RS256', kid: rsa.kid, crit: ['b64'], b64: false }, claims()), 'malformed');
  });

  it('issuer: wrong or missing iss', async () => {
    await rejects(await sign(rsa, claims({ iss: 'https://evil.example' })), 'issuer');
    await rejects(await sign(rsa, claims({ iss: `${idp.issuer}/` })), 'issuer');
    await rejects(await sign(rsa, claims({ iss: idp.issuer.toUpperCase() })), 'issuer');
    await rejects(await sign(rsa, claims({ iss: undefined })), 'issuer');
  });

  it('audience: wrong, missing, not exact', async () => {
    await rejects(await sign(rsa, claims({ aud: 'api://other' })), 'audience');
    await rejects(await sign(rsa, claims({ aud: ['a', 'b'] })), 'audience');
    await rejects(await sign(rsa, claims({ aud: `${AUDIENCE}/` })), 'audience');
    await rejects(await sign(rsa, claims({ aud: AUDIENCE.toUpperCase() })), 'audience');
    await rejects(await sign(rsa, claims({ aud: undefined })), 'audience');
  });

  it('no-expiry: exp is required', async () => {
    await rejects(await sign(rsa, claims({ exp: undefined })), 'no-expiry');
  });

  it('clockSkewSeconds is at most 60', async () => {
    const token = await sign(rsa, claims());
    await assert.rejects(verifyAccessToken(token, options({ clockSkewSeconds: 61 })), RangeError);
    await assert.rejects(verifyAccessToken(token, options({ clockSkewSeconds: -1 })), RangeError);
  });

  it('expired: beyond the skew', async () => {
    await rejects(await sign(rsa, claims({ exp: now() - 61 })), 'expired');
    await rejects(await sign(rsa, claims({ exp: now() - 5 })), 'expired', { clockSkewSeconds: 0 });
  });

  it('not-yet-valid: nbf beyond the skew', async () => {
    await rejects(await sign(rsa, claims({ nbf: now() + 120 })), 'not-yet-valid');
  });

  it('issued-in-future: iat beyond the skew', async () => {
    await rejects(await sign(rsa, claims({ iat: now() + 120 })), 'issued-in-future');
  });

  it('no-object-id: missing, empty, not a string, too long', async () => {
    await rejects(await sign(rsa, claims({ oid: undefined })), 'no-object-id');
    await rejects(await sign(rsa, claims({ oid: '' })), 'no-object-id');
    await rejects(await sign(rsa, claims({ oid: 42 })), 'no-object-id');
    await rejects(await sign(rsa, claims({ oid: ['object-1'] })), 'no-object-id');
    await rejects(await sign(rsa, claims({ oid: 'o'.repeat(257) })), 'no-object-id');
    await rejects(await sign(rsa, claims({ sub: undefined })), 'no-object-id', { objectIdClaim: 'sub' });
  });
});
