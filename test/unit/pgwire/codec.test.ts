import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as be from '../../../src/pgwire/backend.js';
import * as fe from '../../../src/pgwire/frontend.js';
import { parseAuthentication, parseBackendKeyData, parseErrorOrNotice, parseParameterStatus, parseReadyForQuery } from '../../../src/pgwire/parse-backend.js';
import { parsePasswordMessage, parseSASLInitialResponse, parseSASLResponse } from '../../../src/pgwire/parse-frontend.js';
import { MessageReader, type WireMessage } from '../../../src/pgwire/reader.js';
import { ProtocolError } from '../../../src/pgwire/protocol-error.js';

/** Frames one serialized message back into type + body, checking the length word. */
function unframe(bytes: Buffer): WireMessage {
  const r = new MessageReader();
  r.push(bytes);
  const m = r.next();
  assert.ok(m);
  assert.equal(r.buffered, 0, 'length word covers the whole message');
  return m;
}

function protocolError(message: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.sqlstate, '08P01');
    assert.equal(err.message, message);
    return true;
  };
}

describe('backend serializers', () => {
  it('ErrorResponse: exact bytes', () => {
    const bytes = be.errorResponse({
      severity: 'FATAL',
      sqlstate: '28P01',
      message: 'password authentication failed for user "bob"',
    });
    const expected = Buffer.concat([
      Buffer.from('E'),
      Buffer.from('00000049', 'hex'),
      Buffer.from('SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "bob"\0\0', 'latin1'),
    ]);
    assert.deepEqual(bytes, expected);
  });

  it('ErrorResponse with detail and hint: exact bytes, and parses back', () => {
    const bytes = be.errorResponse({ severity: 'ERROR', sqlstate: '42000', message: 'm', detail: 'd', hint: 'h' });
    assert.deepEqual(bytes, Buffer.from('E\0\0\0\x23SERROR\0VERROR\0C42000\0Mm\0Dd\0Hh\0\0', 'latin1'));
    const parsed = parseErrorOrNotice(unframe(bytes).body);
    assert.deepEqual(parsed, {
      severity: 'ERROR',
      sqlstate: '42000',
      message: 'm',
      detail: 'd',
      hint: 'h',
      fields: new Map([
        ['S', 'ERROR'],
        ['V', 'ERROR'],
        ['C', '42000'],
        ['M', 'm'],
        ['D', 'd'],
        ['H', 'h'],
      ]),
    });
  });

  it('NoticeResponse uses type N', () => {
    const m = unframe(be.noticeResponse({ severity: 'WARNING', sqlstate: '01000', message: 'careful' }));
    assert.equal(m.type, 'N');
    assert.equal(parseErrorOrNotice(m.body).message, 'careful');
  });

  it('refuses a bad SQLSTATE and NUL inside strings', () => {
    assert.throws(() => be.errorResponse({ severity: 'FATAL', sqlstate: '28p01', message: 'x' }), TypeError);
    assert.throws(() => be.errorResponse({ severity: 'FATAL', sqlstate: '28P01', message: 'a\0b' }), TypeError);
    assert.throws(() => be.parameterStatus('a\0', 'b'), TypeError);
  });

  it('authentication messages: exact bytes', () => {
    assert.deepEqual(be.authenticationOk(), Buffer.from('520000000800000000', 'hex'));
    assert.deepEqual(be.authenticationCleartextPassword(), Buffer.from('520000000800000003', 'hex'));
    assert.deepEqual(
      be.authenticationSASL(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']),
      Buffer.from('R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0', 'latin1'),
    );
    assert.deepEqual(be.authenticationSASLContinue(Buffer.from('r=x')), Buffer.from('R\0\0\0\x0b\0\0\0\x0br=x', 'latin1'));
    assert.deepEqual(be.authenticationSASLFinal(Buffer.from('v=y')), Buffer.from('R\0\0\0\x0b\0\0\0\x0cv=y', 'latin1'));
  });

  it('authentication messages parse back', () => {
    assert.deepEqual(parseAuthentication(unframe(be.authenticationOk()).body), { kind: 'ok' });
    assert.deepEqual(parseAuthentication(unframe(be.authenticationCleartextPassword()).body), { kind: 'cleartext' });
    assert.deepEqual(parseAuthentication(unframe(be.authenticationSASL(['SCRAM-SHA-256'])).body), {
      kind: 'sasl',
      mechanisms: ['SCRAM-SHA-256'],
    });
    assert.deepEqual(parseAuthentication(unframe(be.authenticationSASLContinue(Buffer.from('abc'))).body), {
      kind: 'saslContinue',
      data: Buffer.from('abc'),
    });
    assert.deepEqual(parseAuthentication(unframe(be.authenticationSASLFinal(Buffer.from('v=1'))).body), {
      kind: 'saslFinal',
      data: Buffer.from('v=1'),
    });
    assert.deepEqual(parseAuthentication(Buffer.from('00000005a1b2c3d4', 'hex')), {
      kind: 'md5',
      salt: Buffer.from('a1b2c3d4', 'hex'),
    });
    assert.deepEqual(parseAuthentication(Buffer.from('00000007', 'hex')), { kind: 'other', code: 7 });
  });

  it('ParameterStatus, BackendKeyData, ReadyForQuery: exact bytes and round trip', () => {
    assert.deepEqual(be.parameterStatus('a', 'b'), Buffer.from('S\0\0\0\x08a\0b\0', 'latin1'));
    assert.deepEqual(parseParameterStatus(unframe(be.parameterStatus('server_version', '15.4')).body), {
      name: 'server_version',
      value: '15.4',
    });
    assert.deepEqual(be.backendKeyData(42, Buffer.from('01020304', 'hex')), Buffer.from('4b0000000c0000002a01020304', 'hex'));
    const key = Buffer.alloc(32, 9);
    assert.deepEqual(parseBackendKeyData(unframe(be.backendKeyData(7, key)).body), { processId: 7, secretKey: key });
    assert.throws(() => be.backendKeyData(1, Buffer.alloc(3)), RangeError);
    assert.deepEqual(be.readyForQuery('I'), Buffer.from('5a0000000549', 'hex'));
    assert.equal(parseReadyForQuery(unframe(be.readyForQuery('E')).body), 'E');
  });

  it('NegotiateProtocolVersion and the one-byte answers', () => {
    assert.deepEqual(be.negotiateProtocolVersion(0, ['_pq_.a']), Buffer.from('v\0\0\0\x13\0\x03\0\0\0\0\0\x01_pq_.a\0', 'latin1'));
    assert.deepEqual(be.sslResponse(true), Buffer.from('S'));
    assert.deepEqual(be.sslResponse(false), Buffer.from('N'));
    assert.deepEqual(be.gssEncResponse(false), Buffer.from('N'));
  });
});

describe('frontend serializers', () => {
  it('startupMessage: exact bytes, from a record or a Map', () => {
    const expected = Buffer.from('\0\0\0\x1d\0\x03\0\0user\0bob\0database\0d\0\0', 'latin1');
    assert.deepEqual(fe.startupMessage({ user: 'bob', database: 'd' }), expected);
    assert.deepEqual(
      fe.startupMessage(
        new Map([
          ['user', 'bob'],
          ['database', 'd'],
        ]),
      ),
      expected,
    );
    assert.throws(() => fe.startupMessage({ '': 'x' }), TypeError);
  });

  it('SASL messages round-trip through the frontend parsers', () => {
    const init = fe.saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc'));
    assert.deepEqual(init, Buffer.from('p\0\0\0\x21SCRAM-SHA-256\0\0\0\0\x0bn,,n=,r=abc', 'latin1'));
    assert.deepEqual(parseSASLInitialResponse(unframe(init).body), {
      mechanism: 'SCRAM-SHA-256',
      data: Buffer.from('n,,n=,r=abc'),
    });
    const none = fe.saslInitialResponse('SCRAM-SHA-256', null);
    assert.deepEqual(none.subarray(-4), Buffer.from('ffffffff', 'hex'));
    assert.deepEqual(parseSASLInitialResponse(unframe(none).body), { mechanism: 'SCRAM-SHA-256', data: Buffer.alloc(0) });
    assert.deepEqual(parseSASLResponse(unframe(fe.saslResponse(Buffer.from('c=biws'))).body), Buffer.from('c=biws'));
  });

  it('passwordMessage, cancelRequest, terminate, sslRequest: exact bytes', () => {
    assert.deepEqual(fe.passwordMessage('pw'), Buffer.from('p\0\0\0\x07pw\0', 'latin1'));
    assert.equal(parsePasswordMessage(unframe(fe.passwordMessage('pässword')).body), 'pässword');
    assert.deepEqual(fe.cancelRequest(12345, Buffer.from('00a1b2c3', 'hex')), Buffer.from('0000001004d2162e0000303900a1b2c3', 'hex'));
    assert.throws(() => fe.cancelRequest(1, Buffer.alloc(257)), RangeError);
    assert.deepEqual(fe.terminate(), Buffer.from('5800000004', 'hex'));
    assert.deepEqual(fe.sslRequest(), Buffer.from('0000000804d2162f', 'hex'));
  });
});

describe('frontend parsers refuse malformed input', () => {
  const init = (tail: Buffer): Buffer => Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), tail]);
  const int32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };

  it('SASLInitialResponse', () => {
    const p = 'invalid SASLInitialResponse message: ';
    assert.throws(() => parseSASLInitialResponse(Buffer.from('SCRAM-SHA-256')), protocolError(p + 'unterminated mechanism name'));
    assert.throws(() => parseSASLInitialResponse(Buffer.from('\0\0\0\0\0')), protocolError(p + 'empty mechanism name'));
    assert.throws(() => parseSASLInitialResponse(Buffer.from('x'.repeat(65) + '\0')), protocolError(p + 'mechanism name longer than 64 bytes'));
    assert.throws(() => parseSASLInitialResponse(init(Buffer.from([0, 0]))), protocolError(p + 'unexpected end of message'));
    assert.throws(() => parseSASLInitialResponse(init(int32(-2))), protocolError(p + 'negative data length'));
    assert.throws(
      () => parseSASLInitialResponse(init(Buffer.concat([int32(5), Buffer.from('abcd')]))),
      protocolError(p + 'data length does not match message length'),
    );
    assert.throws(
      () => parseSASLInitialResponse(init(Buffer.concat([int32(3), Buffer.from('abcd')]))),
      protocolError(p + 'data length does not match message length'),
    );
    assert.throws(() => parseSASLInitialResponse(init(Buffer.concat([int32(-1), Buffer.from('a')]))), protocolError(p + 'unexpected trailing data'));
    assert.throws(() => parseSASLInitialResponse(init(int32(0x7fffffff))), protocolError(p + 'data longer than 8192 bytes'));
    assert.throws(() => parseSASLInitialResponse(Buffer.from([0xc3, 0x28, 0, 0, 0, 0, 0])), protocolError(p + 'mechanism name is not valid UTF-8'));
  });

  it('SASLResponse is bounded', () => {
    assert.throws(() => parseSASLResponse(Buffer.alloc(8193)), protocolError('invalid SASLResponse message: data longer than 8192 bytes'));
    assert.equal(parseSASLResponse(Buffer.alloc(10), { maxSaslData: 10 }).length, 10);
  });

  it('PasswordMessage', () => {
    const p = 'invalid PasswordMessage message: ';
    assert.throws(() => parsePasswordMessage(Buffer.from('pw')), protocolError(p + 'unterminated password'));
    assert.throws(() => parsePasswordMessage(Buffer.from('pw\0x')), protocolError(p + 'unexpected trailing data'));
    assert.throws(() => parsePasswordMessage(Buffer.from('pw\0\0')), protocolError(p + 'unexpected trailing data'));
    assert.throws(() => parsePasswordMessage(Buffer.from('abcd\0'), { maxPassword: 3 }), protocolError(p + 'password longer than 3 bytes'));
    assert.throws(() => parsePasswordMessage(Buffer.from([0xff, 0])), protocolError(p + 'password is not valid UTF-8'));
    assert.equal(parsePasswordMessage(Buffer.from('\0')), '');
  });
});

describe('backend parsers refuse malformed input', () => {
  it('Authentication', () => {
    const p = 'invalid Authentication message: ';
    assert.throws(() => parseAuthentication(Buffer.from('000000', 'hex')), protocolError(p + 'unexpected end of message'));
    assert.throws(() => parseAuthentication(Buffer.from('0000000000', 'hex')), protocolError(p + 'unexpected trailing data'));
    assert.throws(() => parseAuthentication(Buffer.from('00000005a1b2c3', 'hex')), protocolError(p + 'length out of bounds'));
    assert.throws(() => parseAuthentication(Buffer.from('0000000a00', 'hex')), protocolError(p + 'no SASL mechanism offered'));
    assert.throws(() => parseAuthentication(Buffer.from('\0\0\0\x0aSCRAM', 'latin1')), protocolError(p + 'unterminated mechanism name'));
    assert.throws(() => parseAuthentication(Buffer.from('\0\0\0\x0aA\0\0x', 'latin1')), protocolError(p + 'unexpected trailing data'));
    const many = Buffer.concat([Buffer.from('0000000a', 'hex'), Buffer.from('m\0'.repeat(17) + '\0')]);
    assert.throws(() => parseAuthentication(many), protocolError(p + 'too many SASL mechanisms'));
  });

  it('ErrorResponse', () => {
    const p = 'invalid ErrorResponse/NoticeResponse message: ';
    assert.throws(() => parseErrorOrNotice(Buffer.from('SFATAL\0', 'latin1')), protocolError(p + 'unexpected end of message'));
    assert.throws(() => parseErrorOrNotice(Buffer.from('SFATAL\0C28000\0\0', 'latin1')), protocolError(p + 'missing message'));
    assert.throws(() => parseErrorOrNotice(Buffer.from('SFATAL', 'latin1')), protocolError(p + 'unterminated field'));
    assert.throws(() => parseErrorOrNotice(Buffer.from('SFATAL\0C1\0Mm\0\0x', 'latin1')), protocolError(p + 'unexpected trailing data'));
    // S only (servers before 9.6 send no V)
    assert.equal(parseErrorOrNotice(Buffer.from('SFEHLER\0C28000\0Mm\0\0', 'latin1')).severity, 'FEHLER');
  });

  it('BackendKeyData and ReadyForQuery', () => {
    assert.throws(() => parseBackendKeyData(Buffer.alloc(7)), protocolError('invalid BackendKeyData message: invalid cancel key length'));
    assert.throws(() => parseBackendKeyData(Buffer.alloc(4 + 257)), protocolError('invalid BackendKeyData message: invalid cancel key length'));
    assert.throws(() => parseReadyForQuery(Buffer.from('X')), protocolError('invalid ReadyForQuery message: unknown transaction status'));
    assert.throws(() => parseReadyForQuery(Buffer.from('II')), protocolError('invalid ReadyForQuery message: unexpected trailing data'));
    assert.throws(() => parseParameterStatus(Buffer.from('a\0')), protocolError('invalid ParameterStatus message: unterminated parameter value'));
  });
});
