import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTlsHandshakeStart, parseStartupPacket, ProtocolError } from '../../../src/pgwire/startup.js';
import { cancelRequest, startupMessage, sslRequest } from '../../../src/pgwire/frontend.js';

/** A startup-phase packet built by hand: length word, code, then raw payload bytes. */
function packet(code: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(out.length, 0);
  out.writeUInt32BE(code >>> 0, 4);
  body.copy(out, 8);
  return out;
}

const V3 = 196608;

function rejects(input: Buffer, sqlstate: string, message: string | RegExp): void {
  assert.throws(
    () => parseStartupPacket(input),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
      assert.equal(err.sqlstate, sqlstate);
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

const LAYOUT = 'invalid startup packet layout: expected terminator as last byte';

describe('parseStartupPacket', () => {
  it('recognizes SSLRequest and GSSENCRequest', () => {
    assert.deepEqual(parseStartupPacket(Buffer.from('0000000804d2162f', 'hex')), { kind: 'ssl' });
    assert.deepEqual(parseStartupPacket(Buffer.from('0000000804d21630', 'hex')), { kind: 'gssenc' });
    assert.deepEqual(parseStartupPacket(sslRequest()), { kind: 'ssl' });
  });

  it('rejects an SSLRequest with trailing bytes', () => {
    rejects(packet(80877103, 'x'), '08P01', 'invalid length of encryption request packet');
  });

  it('parses a CancelRequest with a 4-byte key', () => {
    const p = Buffer.from('0000001004d2162e0000303900a1b2c3', 'hex');
    const r = parseStartupPacket(p);
    assert.equal(r.kind, 'cancel');
    assert.ok(r.kind === 'cancel');
    assert.equal(r.processId, 12345);
    assert.deepEqual(r.secretKey, Buffer.from('00a1b2c3', 'hex'));
  });

  it('parses a CancelRequest with a 256-byte key (protocol 3.2) and round-trips cancelRequest()', () => {
    const key = Buffer.alloc(256, 7);
    const r = parseStartupPacket(cancelRequest(-5, key));
    assert.ok(r.kind === 'cancel');
    assert.equal(r.processId, -5);
    assert.deepEqual(r.secretKey, key);
  });

  it('rejects cancel keys shorter than 4 or longer than 256 bytes', () => {
    rejects(packet(80877102, Buffer.alloc(4 + 3)), '08P01', 'invalid length of cancel request packet');
    rejects(packet(80877102, Buffer.alloc(4)), '08P01', 'invalid length of cancel request packet');
    rejects(packet(80877102, Buffer.alloc(4 + 257)), '08P01', 'invalid length of cancel request packet');
  });

  it('parses a StartupMessage', () => {
    const r = parseStartupPacket(packet(V3, 'user\0alice\0database\0db1\0options\0\0\0'));
    assert.deepEqual(r, {
      kind: 'startup',
      majorVersion: 3,
      minorVersion: 0,
      params: new Map([
        ['user', 'alice'],
        ['database', 'db1'],
        ['options', ''],
      ]),
    });
  });

  it('keeps the minor version of protocol 3.x for negotiation', () => {
    const r = parseStartupPacket(packet((3 << 16) | 2, 'user\0u\0_pq_.x\0y\0\0'));
    assert.ok(r.kind === 'startup');
    assert.equal(r.minorVersion, 2);
    assert.equal(r.params.get('_pq_.x'), 'y');
  });

  it('round-trips startupMessage() with UTF-8 names and values', () => {
    const params = { user: 'jürgen@srv', database: 'données', application_name: '日本' };
    const r = parseStartupPacket(startupMessage(params));
    assert.ok(r.kind === 'startup');
    assert.deepEqual(Object.fromEntries(r.params), params);
  });

  it('refuses protocol 2.0 and 4.x with 0A000', () => {
    rejects(packet(2 << 16, 'user\0u\0\0'), '0A000', 'unsupported frontend protocol 2.0: server supports 3.0 to 3.2');
    rejects(packet((4 << 16) | 1, 'user\0u\0\0'), '0A000', 'unsupported frontend protocol 4.1: server supports 3.0 to 3.2');
    rejects(packet((1234 << 16) | 5681), '0A000', 'unsupported frontend protocol 1234.5681: server supports 3.0 to 3.2');
  });

  it('refuses a missing final terminator', () => {
    rejects(packet(V3, 'user\0alice\0'), '08P01', LAYOUT);
    rejects(packet(V3, 'user\0alice'), '08P01', LAYOUT);
    rejects(packet(V3), '08P01', LAYOUT);
  });

  it('refuses a name without a value', () => {
    rejects(packet(V3, 'user\0alice\0database\0'), '08P01', LAYOUT);
  });

  it('refuses an empty name before the end (data after the terminator)', () => {
    rejects(packet(V3, 'user\0alice\0\0database\0db\0\0'), '08P01', LAYOUT);
    rejects(packet(V3, '\0\0'), '08P01', LAYOUT);
  });

  it('refuses duplicate parameters', () => {
    rejects(packet(V3, 'user\0a\0user\0b\0\0'), '08P01', 'duplicate startup parameter "user"');
  });

  it('refuses invalid UTF-8 in names and values', () => {
    const badName = Buffer.concat([Buffer.from('user\0a\0'), Buffer.from([0xc3, 0x28]), Buffer.from('\0v\0\0')]);
    rejects(packet(V3, badName), '08P01', 'invalid byte sequence for encoding "UTF8" in startup packet');
    const badValue = Buffer.concat([Buffer.from('user\0'), Buffer.from([0xff, 0xfe]), Buffer.from('\0\0')]);
    rejects(packet(V3, badValue), '08P01', 'invalid byte sequence for encoding "UTF8" in startup packet');
    const surrogate = Buffer.concat([Buffer.from('user\0'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\0\0')]);
    rejects(packet(V3, surrogate), '08P01', 'invalid byte sequence for encoding "UTF8" in startup packet');
  });

  it('accepts 64 parameters and refuses 65', () => {
    const pairs = (n: number): string => ['user\0u\0', ...Array.from({ length: n - 1 }, (_, i) => `p${i}\0v\0`)].join('');
    const ok = parseStartupPacket(packet(V3, pairs(64) + '\0'));
    assert.ok(ok.kind === 'startup');
    assert.equal(ok.params.size, 64);
    rejects(packet(V3, pairs(65) + '\0'), '08P01', 'too many parameters in startup packet: at most 64 are allowed');
  });

  it('requires a non-empty user', () => {
    rejects(packet(V3, 'database\0d\0\0'), '28000', 'no PostgreSQL user name specified in startup packet');
    rejects(packet(V3, 'user\0\0\0'), '28000', 'no PostgreSQL user name specified in startup packet');
    rejects(packet(V3, '\0'), '28000', 'no PostgreSQL user name specified in startup packet');
  });

  it('refuses packets whose length word is wrong or out of bounds', () => {
    rejects(Buffer.alloc(0), '08P01', 'invalid length of startup packet');
    rejects(Buffer.from('00000004', 'hex'), '08P01', 'invalid length of startup packet');
    rejects(Buffer.from('0000000704d2162f', 'hex'), '08P01', 'invalid length of startup packet');
    const lying = packet(V3, 'user\0u\0\0');
    lying.writeInt32BE(lying.length + 1, 0);
    rejects(lying, '08P01', 'invalid length of startup packet');
    lying.writeInt32BE(-1, 0);
    rejects(lying, '08P01', 'invalid length of startup packet');
    const big = packet(V3, `user\0u\0x\0${'v'.repeat(10000)}\0\0`);
    rejects(big, '08P01', 'invalid length of startup packet');
  });

  it('tells a direct-TLS ClientHello (PostgreSQL 17) from a startup packet by its first byte', () => {
    assert.equal(isTlsHandshakeStart(0x16), true);
    assert.equal(isTlsHandshakeStart(sslRequest()[0]!), false);
    assert.equal(isTlsHandshakeStart(startupMessage({ user: 'u' })[0]!), false);
  });
});
