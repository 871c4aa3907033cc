import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ScramServerSession, type ScramServerResult } from '../../../../src/auth/scram/server.js';
import { ScramClientSession } from '../../../../src/auth/scram/client.js';
import { ScramError } from '../../../../src/auth/scram/scram-error.js';
import { buildScramVerifier, mockVerifier, parseScramVerifier, type ScramVerifier } from '../../../../src/auth/scram/verifier.js';
import { tlsServerEndPoint, type ChannelBinding } from '../../../../src/auth/scram/channel-binding.js';
import { deriveKeys, hmac, sha256, xor } from '../../../../src/auth/scram/keys.js';
import { makeCertificate, type TestCertificate } from './certificates.js';
import { peerCertificate, pgSasl } from './pg-sasl.js';

const PASSWORD = 'correct horse battery staple';
const verifier: ScramVerifier = parseScramVerifier(buildScramVerifier(PASSWORD, { iterations: 4096 }))!;

function server(options: Partial<ConstructorParameters<typeof ScramServerSession>[0]> = {}): ScramServerSession {
  return new ScramServerSession({ verifier, mechanism: 'SCRAM-SHA-256', channelBinding: null, ...options });
}

function scramError(message: string | RegExp, sqlstate = '08P01') {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ScramError, `expected ScramError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.equal(err.sqlstate, sqlstate);
    return true;
  };
}

/** Runs node-postgres' client against a server session; returns the server's verdict. */
async function pgExchange(
  session: ScramServerSession,
  password: string,
  offered: string[],
  stream: ReturnType<typeof peerCertificate> | false = false,
): Promise<ScramServerResult> {
  const client = pgSasl.startSession(offered, stream);
  const serverFirst = session.clientFirst(Buffer.from(client.response));
  await pgSasl.continueSession(client, password, serverFirst.toString(), stream);
  const result = session.clientFinal(Buffer.from(client.response));
  if (result.ok) pgSasl.finalizeSession(client, result.serverFinal.toString()); // throws if v= is wrong
  return result;
}

describe('SCRAM key arithmetic', () => {
  it('matches the RFC 7677 test vector', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const keys = deriveKeys('pencil', salt, 4096);
    const authMessage =
      'n=user,r=rOprNGfwEbeRWgbNEkqO,' +
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,' +
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage));
    assert.equal(proof.toString('base64'), 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    assert.equal(hmac(keys.serverKey, authMessage).toString('base64'), '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    assert.deepEqual(sha256(keys.clientKey), keys.storedKey);
  });
});

describe('ScramServerSession against ScramClientSession', () => {
  it('password client: full exchange, ClientKey recovered', () => {
    const s = server();
    const c = new ScramClientSession({ password: PASSWORD });
    const first = c.clientFirst();
    assert.match(first.toString(), /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    const serverFirst = s.clientFirst(first);
    assert.match(serverFirst.toString(), /^r=[A-Za-z0-9+/]{48},s=[A-Za-z0-9+/=]+,i=4096$/);
    const result = s.clientFinal(c.serverFirst(serverFirst));
    assert.ok(result.ok);
    c.serverFinal(result.serverFinal);
    assert.deepEqual(sha256(result.clientKey), verifier.storedKey);
    assert.deepEqual(result.clientKey, deriveKeys(PASSWORD, verifier.salt, 4096).clientKey);
  });

  it('passthrough: the recovered ClientKey logs in to a second, independent server session', () => {
    const gateway = server();
    const user = new ScramClientSession({ password: PASSWORD });
    const recovered = gateway.clientFinal(user.serverFirst(gateway.clientFirst(user.clientFirst())));
    assert.ok(recovered.ok);

    const realServer = server(); // same verifier, fresh nonces
    const leg = new ScramClientSession({ clientKey: recovered.clientKey, serverKey: verifier.serverKey });
    const result = realServer.clientFinal(leg.serverFirst(realServer.clientFirst(leg.clientFirst())));
    assert.ok(result.ok);
    leg.serverFinal(result.serverFinal);
  });

  it('wrong password: ok:false, and the client would not have accepted anyway', () => {
    const s = server();
    const c = new ScramClientSession({ password: 'Tr0ub4dor&3' });
    const result = s.clientFinal(c.serverFirst(s.clientFirst(c.clientFirst())));
    assert.deepEqual(result, { ok: false, reason: 'invalid client proof' });
  });

  it('client refuses a server that does not know the ServerKey', () => {
    const s = server();
    const c = new ScramClientSession({ clientKey: deriveKeys(PASSWORD, verifier.salt, 4096).clientKey, serverKey: Buffer.alloc(32) });
    const result = s.clientFinal(c.serverFirst(s.clientFirst(c.clientFirst())));
    assert.ok(result.ok);
    assert.throws(() => c.serverFinal(result.serverFinal), scramError('invalid SCRAM server signature', '28000'));
  });

  it('mock session: a normal-looking exchange that always fails, with a stable salt per user', () => {
    const secret = Buffer.alloc(32, 5);
    const mock = mockVerifier('server-1', 'nobody', secret);
    assert.deepEqual(mockVerifier('server-1', 'nobody', secret), mock);
    assert.notDeepEqual(mockVerifier('server-1', 'somebody', secret).salt, mock.salt);
    assert.equal(mock.salt.length, 16);
    assert.equal(mock.iterations, 4096);
    const s = new ScramServerSession({ verifier: mock, mechanism: 'SCRAM-SHA-256', channelBinding: null, mock: true });
    const c = new ScramClientSession({ password: 'anything' });
    const serverFirst = s.clientFirst(c.clientFirst()).toString();
    assert.ok(serverFirst.endsWith(`,s=${mock.salt.toString('base64')},i=4096`));
    assert.deepEqual(s.clientFinal(c.serverFirst(Buffer.from(serverFirst))), {
      ok: false,
      reason: 'mock authentication for an unknown role',
    });
  });

  it('mock mode fails even with the right password for the mock verifier', () => {
    const v = parseScramVerifier(buildScramVerifier('pw', { iterations: 16 }))!;
    const s = new ScramServerSession({ verifier: v, mechanism: 'SCRAM-SHA-256', channelBinding: null, mock: true });
    const c = new ScramClientSession({ password: 'pw' });
    const result = s.clientFinal(c.serverFirst(s.clientFirst(c.clientFirst())));
    assert.equal(result.ok, false);
  });

  it('channel binding: PLUS exchange between the two sessions', async () => {
    const cert = await makeCertificate('ecdsa-p256-sha256');
    const binding: ChannelBinding = { type: 'tls-server-end-point', data: tlsServerEndPoint(cert.der) };
    const s = server({ mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: binding });
    const c = new ScramClientSession({ password: PASSWORD, channelBinding: binding });
    assert.equal(c.mechanism, 'SCRAM-SHA-256-PLUS');
    const first = c.clientFirst();
    assert.ok(first.toString().startsWith('p=tls-server-end-point,,n=,r='));
    const result = s.clientFinal(c.serverFirst(s.clientFirst(first)));
    assert.ok(result.ok);
    c.serverFinal(result.serverFinal);
  });

  it('channel binding: a client bound to another certificate fails the check', async () => {
    const ours = await makeCertificate('ecdsa-p256-sha256');
    const mitm = await makeCertificate('ecdsa-p256-sha256');
    const s = server({ mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: { type: 'tls-server-end-point', data: tlsServerEndPoint(ours.der) } });
    const c = new ScramClientSession({ password: PASSWORD, channelBinding: { type: 'tls-server-end-point', data: tlsServerEndPoint(mitm.der) } });
    const final = c.serverFirst(s.clientFirst(c.clientFirst()));
    assert.throws(() => s.clientFinal(final), scramError('SCRAM channel binding check failed', '28000'));
  });
});

describe('ScramServerSession against node-postgres (pg/lib/crypto/sasl.js)', () => {
  let cert: TestCertificate;
  let binding: ChannelBinding;
  before(async () => {
    cert = await makeCertificate('ecdsa-p384-sha384'); // binding hash SHA-384: not the default
    binding = { type: 'tls-server-end-point', data: tlsServerEndPoint(cert.der) };
  });

  it('without channel binding (pg sends n=*, which is ignored)', async () => {
    const result = await pgExchange(server(), PASSWORD, ['SCRAM-SHA-256']);
    assert.ok(result.ok);
    assert.deepEqual(sha256(result.clientKey), verifier.storedKey);
  });

  it('with channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point over a SHA-384 certificate)', async () => {
    const session = server({ mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: binding });
    const result = await pgExchange(session, PASSWORD, ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], peerCertificate(cert.der));
    assert.ok(result.ok);
  });

  it('a TLS client that does not use binding ("n") is accepted when PLUS was offered', async () => {
    const session = server({ channelBinding: binding });
    const result = await pgExchange(session, PASSWORD, ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    assert.ok(result.ok);
  });

  it('wrong password: ok:false', async () => {
    assert.deepEqual(await pgExchange(server(), 'wrong', ['SCRAM-SHA-256']), { ok: false, reason: 'invalid client proof' });
  });

  it('downgrade: pg saw only SCRAM-SHA-256 on TLS (sends "y") while PLUS was offered', () => {
    const session = server({ channelBinding: binding });
    const client = pgSasl.startSession(['SCRAM-SHA-256'], peerCertificate(cert.der));
    assert.ok(client.response.startsWith('y,,'));
    assert.throws(
      () => session.clientFirst(Buffer.from(client.response)),
      scramError('SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not'),
    );
  });

  it('"y" on a connection without binding is fine', async () => {
    const session = server();
    const result = await pgExchange(session, PASSWORD, ['SCRAM-SHA-256'], peerCertificate(cert.der));
    assert.ok(result.ok);
  });

  it('tampered c= (binding data of another certificate) fails', async () => {
    const session = server({ mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: binding });
    const other = await makeCertificate('ecdsa-p384-sha384');
    const client = pgSasl.startSession(['SCRAM-SHA-256-PLUS'], peerCertificate(other.der));
    const serverFirst = session.clientFirst(Buffer.from(client.response));
    await pgSasl.continueSession(client, PASSWORD, serverFirst.toString(), peerCertificate(other.der));
    assert.throws(() => session.clientFinal(Buffer.from(client.response)), scramError('SCRAM channel binding check failed', '28000'));
  });
});

describe('ScramServerSession refuses malformed or illegal messages', () => {
  const nonce = 'fyko+d2lbbFgONRv9qkxdawL';
  const bindingData = Buffer.alloc(32, 1);
  const plus = () => server({ mechanism: 'SCRAM-SHA-256-PLUS', channelBinding: { type: 'tls-server-end-point', data: bindingData } });

  const firstCases: Array<[string, () => ScramServerSession, string, string | RegExp, string?]> = [
    ['empty', server, '', 'malformed SCRAM message: empty client-first-message'],
    ['no gs2 header', server, 'n', 'malformed SCRAM message: missing GS2 header in client-first-message'],
    ['unknown flag', server, 'x,,n=,r=abc', 'malformed SCRAM message: unexpected channel-binding flag in client-first-message'],
    ['authzid', server, 'n,a=admin,n=,r=abc', 'client uses authorization identity, but it is not supported', '0A000'],
    ['garbage authzid', server, 'n,b,n=,r=abc', 'malformed SCRAM message: unexpected attribute in GS2 header of client-first-message'],
    ['mandatory extension', server, `n,,m=ext,n=,r=${nonce}`, 'client requires an unsupported SCRAM extension', '0A000'],
    ['missing user', server, `n,,r=${nonce}`, 'malformed SCRAM message: expected attribute "n" in client-first-message'],
    ['missing nonce', server, 'n,,n=', 'malformed SCRAM message: expected attribute "r" in client-first-message'],
    ['empty nonce', server, 'n,,n=,r=', 'malformed SCRAM message: expected attribute "r" in client-first-message'],
    ['non-printable nonce', server, 'n,,n=,r=ab\x7f', 'malformed SCRAM message: non-printable characters in SCRAM nonce'],
    ['non-ASCII nonce', server, 'n,,n=,r=abé', 'malformed SCRAM message: non-printable characters in SCRAM nonce'],
    ['bad extension', server, `n,,n=,r=${nonce},bogus`, 'malformed SCRAM message: invalid attribute in client-first-message'],
    [
      'p= with plain mechanism',
      server,
      `p=tls-server-end-point,,n=,r=${nonce}`,
      /without channel binding, but the SCRAM message includes channel binding data/,
    ],
    ['n with PLUS mechanism', plus, `n,,n=,r=${nonce}`, /selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data/],
    ['y with PLUS mechanism', plus, `y,,n=,r=${nonce}`, /selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data/],
    ['unknown binding type', plus, `p=tls-unique,,n=,r=${nonce}`, 'unsupported SCRAM channel-binding type'],
  ];
  for (const [name, make, message, error, sqlstate] of firstCases) {
    it(`client-first: ${name}`, () => {
      assert.throws(() => make().clientFirst(Buffer.from(message, 'utf8')), scramError(error, sqlstate));
    });
  }

  it('client-first: invalid UTF-8, NUL and oversize', () => {
    assert.throws(() => server().clientFirst(Buffer.from([0x6e, 0x2c, 0x2c, 0xff])), scramError(/not valid UTF-8 text/));
    assert.throws(() => server().clientFirst(Buffer.from(`n,,n=\0,r=${nonce}`)), scramError(/not valid UTF-8 text/));
    assert.throws(() => server().clientFirst(Buffer.from(`n,,n=,r=${'a'.repeat(5000)}`)), scramError(/too long/));
  });

  it('PLUS mechanism without binding data (plaintext) is an invalid mechanism choice', () => {
    assert.throws(() => server({ mechanism: 'SCRAM-SHA-256-PLUS' }), scramError('client selected an invalid SASL authentication mechanism'));
  });

  /** A session past client-first, and the right client-final prefix for it. */
  function afterFirst(flag = 'n,,'): { s: ScramServerSession; fullNonce: string; cbind: string } {
    const s = server();
    const serverFirst = s.clientFirst(Buffer.from(`${flag}n=,r=${nonce}`)).toString();
    return { s, fullNonce: serverFirst.split(',')[0]!.slice(2), cbind: Buffer.from(flag).toString('base64') };
  }
  const proof = Buffer.alloc(32, 7).toString('base64');

  it('client-final: channel-binding attribute must repeat the client-first flag', () => {
    const { s, fullNonce } = afterFirst('n,,');
    assert.throws(
      () => s.clientFinal(Buffer.from(`c=eSws,r=${fullNonce},p=${proof}`)),
      scramError('unexpected SCRAM channel-binding attribute in client-final-message'),
    );
  });

  it('client-final: nonce mismatch', () => {
    const { s, fullNonce } = afterFirst();
    assert.throws(() => s.clientFinal(Buffer.from(`c=biws,r=${fullNonce}x,p=${proof}`)), scramError('invalid SCRAM response: nonce does not match'));
  });

  it('client-final: proof missing, of wrong length, not base64, or not last', () => {
    const cases: Array<[(n: string) => string, string]> = [
      [(n) => `c=biws,r=${n}`, 'malformed SCRAM message: expected attribute "p" in client-final-message'],
      [(n) => `c=biws,r=${n},x=1`, 'malformed SCRAM message: expected attribute "p" in client-final-message'],
      [(n) => `c=biws,r=${n},p=${Buffer.alloc(31).toString('base64')}`, 'malformed SCRAM message: malformed proof in client-final-message'],
      [(n) => `c=biws,r=${n},p=${Buffer.alloc(33).toString('base64')}`, 'malformed SCRAM message: malformed proof in client-final-message'],
      [(n) => `c=biws,r=${n},p=not*base64`, 'malformed SCRAM message: malformed proof in client-final-message'],
      [(n) => `c=biws,r=${n},p=${proof},x=1`, 'malformed SCRAM message: garbage found at the end of client-final-message'],
      [(n) => `c=biws,r=${n},p=${proof},p=${proof}`, 'malformed SCRAM message: garbage found at the end of client-final-message'],
      [(n) => `r=${n},p=${proof}`, 'malformed SCRAM message: expected attribute "c" in client-final-message'],
    ];
    for (const [build, error] of cases) {
      const { s, fullNonce } = afterFirst();
      assert.throws(() => s.clientFinal(Buffer.from(build(fullNonce))), scramError(error), build(fullNonce));
    }
  });

  it('client-final: extensions before the proof are accepted (and are part of the AuthMessage)', () => {
    const { s, fullNonce } = afterFirst();
    const result = s.clientFinal(Buffer.from(`c=biws,r=${fullNonce},x=ext,p=${proof}`));
    assert.deepEqual(result, { ok: false, reason: 'invalid client proof' });
  });

  it('messages out of order', () => {
    assert.throws(() => server().clientFinal(Buffer.from('c=biws')), scramError('unexpected SCRAM client-final-message'));
    const { s, fullNonce } = afterFirst();
    assert.throws(() => s.clientFirst(Buffer.from(`n,,n=,r=${nonce}`)), scramError('unexpected SCRAM client-first-message'));
    s.clientFinal(Buffer.from(`c=biws,r=${fullNonce},p=${proof}`));
    assert.throws(() => s.clientFinal(Buffer.from(`c=biws,r=${fullNonce},p=${proof}`)), scramError('unexpected SCRAM client-final-message'));
  });

  it('a failed client-first ends the exchange', () => {
    const s = server();
    assert.throws(() => s.clientFirst(Buffer.from('garbage')), ScramError);
    assert.throws(() => s.clientFinal(Buffer.from('c=biws')), scramError('unexpected SCRAM client-final-message'));
  });
});
