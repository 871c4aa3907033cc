import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScramClientSession } from '../../../../src/auth/scram/client.js';
import { ScramError } from '../../../../src/auth/scram/scram-error.js';

function scramError(message: string | RegExp, sqlstate = '08P01') {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ScramError, `expected ScramError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.equal(err.sqlstate, sqlstate);
    return true;
  };
}

const keys = { clientKey: Buffer.alloc(32, 1), serverKey: Buffer.alloc(32, 2) };

function started(options: ConstructorParameters<typeof ScramClientSession>[0] = keys): { c: ScramClientSession; nonce: string } {
  const c = new ScramClientSession(options);
  const nonce = c.clientFirst().toString().split('r=')[1]!;
  return { c, nonce };
}

describe('ScramClientSession', () => {
  it('client-first: gs2 header per binding mode', () => {
    assert.match(new ScramClientSession(keys).clientFirst().toString(), /^n,,n=,r=[A-Za-z0-9+/]{24}$/);
    assert.match(new ScramClientSession({ ...keys, tlsWithoutBinding: true }).clientFirst().toString(), /^y,,n=,r=/);
    const plus = new ScramClientSession({ ...keys, channelBinding: { type: 'tls-server-end-point', data: Buffer.alloc(32) } });
    assert.equal(plus.mechanism, 'SCRAM-SHA-256-PLUS');
    assert.match(plus.clientFirst().toString(), /^p=tls-server-end-point,,n=,r=/);
  });

  it('client-final carries c=, the full nonce and a 32-byte proof', () => {
    const { c, nonce } = started();
    const final = c.serverFirst(Buffer.from(`r=${nonce}SERVER,s=c2FsdA==,i=4096`)).toString();
    const m = /^c=biws,r=([^,]+),p=([A-Za-z0-9+/=]+)$/.exec(final);
    assert.ok(m);
    assert.equal(m[1], `${nonce}SERVER`);
    assert.equal(Buffer.from(m[2]!, 'base64').length, 32);
  });

  it('refuses a server nonce that does not extend ours', () => {
    const cases = ['r=other,s=c2FsdA==,i=4096'];
    for (const text of cases) {
      const { c } = started();
      assert.throws(() => c.serverFirst(Buffer.from(text)), scramError('invalid SCRAM server-first-message: server nonce does not extend the client nonce'));
    }
    const { c, nonce } = started();
    assert.throws(() => c.serverFirst(Buffer.from(`r=${nonce},s=c2FsdA==,i=4096`)), scramError(/does not extend/));
  });

  it('refuses iteration counts outside 1..10,000,000 and malformed ones', () => {
    for (const i of ['0', '-1', '10000001', '99999999999', '1e3', '', '0x10']) {
      const { c, nonce } = started();
      const message = i === '' ? /expected attribute "i"/ : 'invalid SCRAM server-first-message: iteration count out of range';
      assert.throws(() => c.serverFirst(Buffer.from(`r=${nonce}X,s=c2FsdA==,i=${i}`)), scramError(message), i);
    }
    const { c, nonce } = started({ ...keys, maxIterations: 100 });
    assert.throws(() => c.serverFirst(Buffer.from(`r=${nonce}X,s=c2FsdA==,i=101`)), scramError(/iteration count out of range/));
    const ok = started();
    ok.c.serverFirst(Buffer.from(`r=${ok.nonce}X,s=c2FsdA==,i=10000000`)); // keys given: no PBKDF2 run
  });

  it('refuses a missing or invalid salt, missing attributes and extensions', () => {
    const cases: Array<[(n: string) => string, string | RegExp, string?]> = [
      [(n) => `r=${n}X,i=4096`, 'malformed SCRAM message: expected attribute "s" in server-first-message'],
      [(n) => `r=${n}X,s=,i=4096`, 'malformed SCRAM message: expected attribute "s" in server-first-message'],
      [(n) => `r=${n}X,s=***,i=4096`, 'malformed SCRAM message: invalid salt in server-first-message'],
      [(n) => `r=${n}X,s=c2FsdA==`, 'malformed SCRAM message: expected attribute "i" in server-first-message'],
      [(n) => `s=c2FsdA==,r=${n}X,i=4096`, 'malformed SCRAM message: expected attribute "r" in server-first-message'],
      [(n) => `m=x,r=${n}X,s=c2FsdA==,i=4096`, 'server requires an unsupported SCRAM extension', '0A000'],
      [(n) => `r=${n}X\x01,s=c2FsdA==,i=4096`, 'malformed SCRAM message: non-printable characters in SCRAM nonce'],
    ];
    for (const [build, error, sqlstate] of cases) {
      const { c, nonce } = started();
      assert.throws(() => c.serverFirst(Buffer.from(build(nonce))), scramError(error, sqlstate), build(nonce));
    }
  });

  it('server-final: e= and a wrong or malformed v= throw', () => {
    const run = (final: string) => {
      const { c, nonce } = started();
      c.serverFirst(Buffer.from(`r=${nonce}X,s=c2FsdA==,i=1`));
      return () => c.serverFinal(Buffer.from(final));
    };
    assert.throws(run('e=invalid-proof'), scramError('SCRAM authentication failed: server error "invalid-proof"', '28000'));
    assert.throws(run('e=\x01\x02'), scramError('SCRAM authentication failed: server error "unreadable"', '28000'));
    assert.throws(run(`v=${Buffer.alloc(32).toString('base64')}`), scramError('invalid SCRAM server signature', '28000'));
    assert.throws(run('v=***'), scramError('invalid SCRAM server signature', '28000'));
    assert.throws(run('x=1'), scramError('malformed SCRAM message: expected attribute "v" in server-final-message'));
  });

  it('messages out of order and bad keys', () => {
    const c = new ScramClientSession(keys);
    assert.throws(() => c.serverFirst(Buffer.from('r=x,s=c2FsdA==,i=1')), scramError('unexpected SCRAM server-first-message'));
    c.clientFirst();
    assert.throws(() => c.clientFirst(), scramError('SCRAM client-first-message already sent'));
    assert.throws(() => c.serverFinal(Buffer.from('v=x')), scramError('unexpected SCRAM server-final-message'));
    assert.throws(() => new ScramClientSession({ clientKey: Buffer.alloc(31), serverKey: Buffer.alloc(32) }), RangeError);
  });
});
