import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildProxyV1,
  parseProxyHeader,
  ProxyProtocolError,
  startsWithProxySignature,
  type ProxyProtocolErrorReason,
} from '../../../../src/gateway/proxy-protocol/index.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

function fails(input: string | Buffer, reason: ProxyProtocolErrorReason): void {
  const buf = typeof input === 'string' ? bytes(input) : input;
  assert.throws(
    () => parseProxyHeader(buf),
    (e: unknown) => e instanceof ProxyProtocolError && e.reason === reason,
    `${JSON.stringify(buf.toString('latin1'))} should fail with ${reason}`,
  );
}

describe('PROXY v1', () => {
  it('parses TCP4 and stops at the CRLF', () => {
    const header = bytes('PROXY TCP4 192.0.2.1 198.51.100.2 56324 5432\r\n');
    const result = parseProxyHeader(Buffer.concat([header, bytes('\0\0\0\x08\x04\xd2\x16\x2f')]));
    assert.deepEqual(result, {
      status: 'ok',
      consumed: header.length,
      header: {
        version: 1,
        command: 'PROXY',
        family: 'inet',
        transport: 'stream',
        source: { address: '192.0.2.1', port: 56324 },
        destination: { address: '198.51.100.2', port: 5432 },
        tlvs: [],
        crc32cVerified: false,
      },
    });
  });

  it('parses TCP6, keeps IPv4-mapped sources as IPv6 text, canonicalizes', () => {
    const result = parseProxyHeader(bytes('PROXY TCP6 ::FFFF:192.0.2.1 2001:DB8:0:0::1 0 65535\r\n'));
    assert.equal(result.status, 'ok');
    assert.deepEqual(result.status === 'ok' && result.header.source, { address: '::ffff:192.0.2.1', port: 0 });
    assert.deepEqual(result.status === 'ok' && result.header.destination, { address: '2001:db8::1', port: 65535 });
    assert.equal(result.status === 'ok' && result.header.family, 'inet6');
  });

  it('parses UNKNOWN with or without trailing fields', () => {
    const expected = { version: 1, command: 'PROXY', family: 'unspec', transport: 'unspec', tlvs: [], crc32cVerified: false };
    assert.deepEqual(parseProxyHeader(bytes('PROXY UNKNOWN\r\n')), { status: 'ok', consumed: 15, header: expected });
    const long = 'PROXY UNKNOWN ffff:f...:ffff ffff:f...:ffff 65535 65535\r\n';
    assert.deepEqual(parseProxyHeader(bytes(long)), { status: 'ok', consumed: long.length, header: expected });
  });

  it('accepts the longest legal line (107 bytes) and refuses one byte more', () => {
    const max6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const line = `PROXY TCP6 ${max6} ${max6} 65535 65535\r\n`;
    assert.equal(line.length, 104);
    const padded = `PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n`;
    assert.equal(padded.length, 107);
    assert.equal(parseProxyHeader(bytes(padded)).status, 'ok');
    fails(`PROXY UNKNOWN ${'x'.repeat(107 - 15)}\r\n`, 'too-long');
    // Without any CRLF, it gives up at 107 bytes rather than waiting forever.
    fails(`PROXY UNKNOWN ${'x'.repeat(100)}`, 'too-long');
    assert.deepEqual(parseProxyHeader(bytes(`PROXY UNKNOWN ${'x'.repeat(92)}`)), { status: 'incomplete' });
  });

  it('is incomplete on every strict prefix, then ok (byte by byte)', () => {
    const line = bytes('PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n');
    for (let n = 0; n < line.length; n++) {
      assert.deepEqual(parseProxyHeader(line.subarray(0, n)), { status: 'incomplete' }, `prefix ${n}`);
    }
    const ok = parseProxyHeader(line);
    assert.equal(ok.status === 'ok' && ok.consumed, line.length);
  });

  it('refuses bad addresses and ports', () => {
    fails('PROXY TCP4 10.0.0.01 10.0.0.2 1 2\r\n', 'bad-address');
    fails('PROXY TCP4 10.0.0.256 10.0.0.2 1 2\r\n', 'bad-address');
    fails('PROXY TCP4 10.0.0.1 10.0.0 1 2\r\n', 'bad-address');
    fails('PROXY TCP4 ::1 10.0.0.2 1 2\r\n', 'bad-address');
    fails('PROXY TCP6 10.0.0.1 ::2 1 2\r\n', 'bad-address');
    fails('PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n', 'bad-address');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n', 'bad-address');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 1 65536\r\n', 'bad-address');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n', 'bad-address');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 1 \r\n', 'bad-address');
  });

  it('refuses bad syntax', () => {
    fails('PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n', 'bad-syntax');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n', 'bad-syntax');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n', 'bad-syntax');
    fails('PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n', 'bad-syntax');
    fails('PROXY TCP4 10.0.0.1\r10.0.0.2 1 2\r\n', 'bad-syntax');
    fails('PROXY TCP4 10.0.0.1\t10.0.0.2 1 2\r\n', 'bad-syntax');
    fails(Buffer.concat([bytes('PROXY UNKNOWN '), Buffer.from([0xc3, 0xa9]), bytes('\r\n')]), 'bad-syntax');
  });

  it('refuses other protocols, early', () => {
    fails('PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n', 'bad-family');
    fails('PROXY TCP5', 'bad-family');
    fails('PROXY X', 'bad-family');
    fails('PROXY UNKNOWNX\r\n', 'bad-family');
    fails('PROXY tcp4 10.0.0.1 10.0.0.2 1 2\r\n', 'bad-family');
  });

  it('refuses a wrong signature as soon as it shows', () => {
    fails('PROXX', 'bad-signature');
    fails('proxy TCP4', 'bad-signature');
    fails('PROXYTCP4', 'bad-signature');
    fails(Buffer.from([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f]), 'bad-signature'); // SSLRequest
    assert.deepEqual(parseProxyHeader(bytes('PROX')), { status: 'incomplete' });
  });

  it('builds lines the parser reads back', () => {
    assert.equal(
      buildProxyV1({ source: { address: '192.0.2.1', port: 1 }, destination: { address: '192.0.2.2', port: 2 } }).toString('latin1'),
      'PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n',
    );
    assert.equal(
      buildProxyV1({ source: { address: '2001:db8::1', port: 1 }, destination: { address: '::1', port: 2 } }).toString('latin1'),
      'PROXY TCP6 2001:db8::1 ::1 1 2\r\n',
    );
    assert.equal(buildProxyV1(null).toString('latin1'), 'PROXY UNKNOWN\r\n');
  });
});

describe('startsWithProxySignature', () => {
  it('tells v1, v2, partial and none apart', () => {
    const v2 = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
    assert.equal(startsWithProxySignature(Buffer.alloc(0)), 'partial');
    assert.equal(startsWithProxySignature(bytes('PRO')), 'partial');
    assert.equal(startsWithProxySignature(bytes('PROXY')), 'partial');
    assert.equal(startsWithProxySignature(bytes('PROXY ')), 'v1');
    assert.equal(startsWithProxySignature(bytes('PROXY TCP4')), 'v1');
    assert.equal(startsWithProxySignature(bytes('PROXX')), 'none');
    assert.equal(startsWithProxySignature(v2.subarray(0, 1)), 'partial');
    assert.equal(startsWithProxySignature(v2.subarray(0, 11)), 'partial');
    assert.equal(startsWithProxySignature(v2), 'v2');
    assert.equal(startsWithProxySignature(Buffer.concat([v2, Buffer.from([0x21])])), 'v2');
    assert.equal(startsWithProxySignature(Buffer.from('0d0a0d0a01', 'hex')), 'none');
    assert.equal(startsWithProxySignature(Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f])), 'none');
  });
});
