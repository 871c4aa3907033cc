import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  awsVpceIdTlv,
  azureLinkIdTlv,
  buildProxyV2,
  crc32c,
  parseProxyHeader,
  ProxyProtocolError,
  type ProxyHeader,
  type ProxyProtocolErrorReason,
} from '../../../../src/gateway/proxy-protocol/index.js';

const sig = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function header(buf: Buffer, options = {}): ProxyHeader & { consumed: number } {
  const result = parseProxyHeader(buf, options);
  assert.equal(result.status, 'ok');
  if (result.status !== 'ok') throw new Error('unreachable');
  return { ...result.header, consumed: result.consumed };
}

function fails(buf: Buffer, reason: ProxyProtocolErrorReason, options = {}): void {
  assert.throws(
    () => parseProxyHeader(buf, options),
    (e: unknown) => e instanceof ProxyProtocolError && e.reason === reason,
    `${buf.toString('hex')} should fail with ${reason}`,
  );
}

/** A raw v2 header from parts, length field computed (or forced). */
function raw(verCmd: number, fam: number, body: Buffer, length = body.length): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = verCmd;
  fixed[1] = fam;
  fixed.writeUInt16BE(length, 2);
  return Buffer.concat([sig, fixed, body]);
}

const tlv = (type: number, value: Buffer): Buffer => {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
};

const inet = Buffer.from('c0000201c6336402dc040015', 'hex'); // 192.0.2.1 → 198.51.100.2, 56324 → 21

describe('CRC32C', () => {
  it('matches the standard check value', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeros
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43); // RFC 3720 B.4: 32 bytes of 0xff
  });
});

describe('PROXY v2: addresses', () => {
  it('parses PROXY over IPv4 and stops at the declared length', () => {
    const buf = raw(0x21, 0x11, inet);
    const next = Buffer.from('00000008', 'hex');
    const result = parseProxyHeader(Buffer.concat([buf, next]));
    assert.deepEqual(result, {
      status: 'ok',
      consumed: 28,
      header: {
        version: 2,
        command: 'PROXY',
        family: 'inet',
        transport: 'stream',
        source: { address: '192.0.2.1', port: 56324 },
        destination: { address: '198.51.100.2', port: 21 },
        tlvs: [],
        crc32cVerified: false,
      },
    });
  });

  it('parses IPv6, keeping IPv4-mapped text, and UDP', () => {
    const body = Buffer.alloc(36);
    Buffer.from('00000000000000000000ffffc0000201', 'hex').copy(body, 0);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(body, 16);
    body.writeUInt16BE(443, 32);
    body.writeUInt16BE(5432, 34);
    const h = header(raw(0x21, 0x22, body));
    assert.equal(h.family, 'inet6');
    assert.equal(h.transport, 'dgram');
    assert.deepEqual(h.source, { address: '::ffff:192.0.2.1', port: 443 });
    assert.deepEqual(h.destination, { address: '2001:db8::1', port: 5432 });
  });

  it('parses Unix socket paths', () => {
    const h = header(
      buildProxyV2({
        command: 'PROXY',
        family: 'unix',
        source: { address: '/run/a.sock', port: 0 },
        destination: { address: '/run/pg/.s.PGSQL.5432', port: 0 },
      }),
    );
    assert.equal(h.consumed, 16 + 216);
    assert.deepEqual(
      [h.family, h.transport, h.source, h.destination],
      ['unix', 'stream', { address: '/run/a.sock', port: 0 }, { address: '/run/pg/.s.PGSQL.5432', port: 0 }],
    );
  });

  it('parses LOCAL: no addresses even if an address block is present, TLVs still read', () => {
    assert.deepEqual(parseProxyHeader(raw(0x20, 0x00, Buffer.alloc(0))), {
      status: 'ok',
      consumed: 16,
      header: { version: 2, command: 'LOCAL', family: 'unspec', transport: 'unspec', tlvs: [], crc32cVerified: false },
    });
    const h = header(raw(0x20, 0x11, Buffer.concat([inet, tlv(0xe0, Buffer.from('x'))])));
    assert.equal(h.command, 'LOCAL');
    assert.equal(h.source, undefined);
    assert.deepEqual(h.tlvs, [{ type: 0xe0, value: Buffer.from('x') }]);
  });

  it('parses PROXY with UNSPEC family: no addresses, the rest are TLVs', () => {
    const h = header(raw(0x21, 0x00, tlv(0x04, Buffer.alloc(3))));
    assert.deepEqual([h.command, h.family, h.source, h.tlvs.length], ['PROXY', 'unspec', undefined, 1]);
  });

  it('refuses version, command and family bytes it does not know, as soon as they arrive', () => {
    fails(Buffer.concat([sig, Buffer.from([0x11])]), 'bad-version');
    fails(Buffer.concat([sig, Buffer.from([0x31])]), 'bad-version');
    fails(Buffer.concat([sig, Buffer.from([0x22])]), 'bad-command');
    fails(Buffer.concat([sig, Buffer.from([0x2f])]), 'bad-command');
    for (const fam of [0x01, 0x10, 0x13, 0x20, 0x23, 0x30, 0x41, 0xff]) fails(Buffer.concat([sig, Buffer.from([0x21, fam])]), 'bad-family');
    fails(Buffer.from('0d0a0d0a000d0a515549540b', 'hex'), 'bad-signature');
    fails(Buffer.from('0d0a0d', 'hex').fill(0x0a, 2), 'bad-signature');
  });

  it('refuses an address block shorter than its family needs', () => {
    fails(raw(0x21, 0x11, inet.subarray(0, 11)), 'truncated');
    fails(raw(0x21, 0x21, Buffer.alloc(35)), 'truncated');
    fails(raw(0x21, 0x31, Buffer.alloc(215)), 'truncated');
    fails(raw(0x20, 0x11, Buffer.alloc(0)), 'truncated');
  });

  it('bounds the header: too-long before waiting for the body', () => {
    fails(Buffer.concat([sig, Buffer.from([0x21, 0x11, 0x0f, 0xf1])]), 'too-long'); // 16 + 4081 > 4096
    assert.deepEqual(parseProxyHeader(Buffer.concat([sig, Buffer.from([0x21, 0x11, 0x0f, 0xf0])])), { status: 'incomplete' });
    const big = raw(0x21, 0x11, Buffer.concat([inet, tlv(0x04, Buffer.alloc(200))]));
    fails(big, 'too-long', { maxHeaderBytes: 64 });
    assert.equal(header(big, { maxHeaderBytes: 16 + 65535 }).consumed, 16 + 12 + 203);
    assert.throws(() => parseProxyHeader(big, { maxHeaderBytes: 15 }), RangeError);
    assert.throws(() => parseProxyHeader(big, { maxHeaderBytes: 16 + 65536 }), RangeError);
  });

  it('is incomplete on every strict prefix, then ok (byte by byte)', () => {
    const buf = buildProxyV2({
      command: 'PROXY',
      source: { address: '2001:db8::1', port: 1 },
      destination: { address: '2001:db8::2', port: 2 },
      tlvs: [azureLinkIdTlv(7), { type: 0x02, value: Buffer.from('db.example.com') }],
      withCrc32c: true,
    });
    for (let n = 0; n < buf.length; n++) assert.deepEqual(parseProxyHeader(buf.subarray(0, n)), { status: 'incomplete' }, `prefix ${n}`);
    const h = header(Buffer.concat([buf, Buffer.from('PROXY ')]));
    assert.equal(h.consumed, buf.length);
    assert.equal(h.crc32cVerified, true);
    assert.equal(h.azureLinkId, 7);
    assert.equal(h.authority, 'db.example.com');
  });
});

describe('PROXY v2: TLVs', () => {
  it('reads the AWS documentation example: CRC32C, VPC endpoint id, NOOP padding', () => {
    const buf = Buffer.concat([
      Buffer.from('0d0a0d0a000d0a515549540a21110054ac1f0771ac1f0a1fc8f20050030004e8d6892d', 'hex'),
      Buffer.from('ea001701' + '76706365' + '2d30386432626631356661633530303163' + '39' + '040024', 'hex'),
      Buffer.alloc(36),
    ]);
    assert.equal(buf.length, 100);
    const h = header(buf);
    assert.equal(h.consumed, 100);
    assert.deepEqual(h.source, { address: '172.31.7.113', port: 51442 });
    assert.deepEqual(h.destination, { address: '172.31.10.31', port: 80 });
    assert.equal(h.crc32cVerified, true);
    assert.equal(h.awsVpceId, 'vpce-08d2bf15fac5001c9');
    assert.deepEqual(
      h.tlvs.map((t) => [t.type, t.value.length]),
      [
        [0x03, 4],
        [0xea, 23],
        [0x04, 36],
      ],
    );
    // The same bytes with one address bit flipped fail the checksum.
    const tampered = Buffer.from(buf);
    tampered[19] ^= 1;
    fails(tampered, 'bad-crc');
  });

  it('reads the Azure Private Link LinkID as little-endian uint32', () => {
    const h = header(raw(0x21, 0x11, Buffer.concat([inet, tlv(0xee, Buffer.from('0178563412', 'hex'))])));
    assert.equal(h.azureLinkId, 0x12345678);
    assert.equal(header(buildProxyV2({ command: 'PROXY', tlvs: [azureLinkIdTlv(0xffffffff)] })).azureLinkId, 0xffffffff);
    // Other Azure subtypes are kept raw only.
    const other = header(raw(0x21, 0x11, Buffer.concat([inet, tlv(0xee, Buffer.from('02ff', 'hex'))])));
    assert.equal(other.azureLinkId, undefined);
    assert.deepEqual(other.tlvs, [{ type: 0xee, value: Buffer.from('02ff', 'hex') }]);
  });

  it('refuses malformed identity TLVs', () => {
    const withTlv = (t: Buffer): Buffer => raw(0x21, 0x11, Buffer.concat([inet, t]));
    fails(withTlv(tlv(0xee, Buffer.from('01785634', 'hex'))), 'bad-tlv'); // LinkID too short
    fails(withTlv(tlv(0xee, Buffer.from('017856341200', 'hex'))), 'bad-tlv'); // too long
    fails(withTlv(tlv(0xee, Buffer.alloc(0))), 'bad-tlv'); // no subtype
    fails(withTlv(Buffer.concat([tlv(0xee, Buffer.from('0101000000', 'hex')), tlv(0xee, Buffer.from('0102000000', 'hex'))])), 'bad-tlv');
    fails(withTlv(tlv(0xea, Buffer.from([0x01]))), 'bad-tlv'); // empty id
    fails(withTlv(tlv(0xea, Buffer.from('01767063 65 2d00'.replace(/ /g, ''), 'hex'))), 'bad-tlv'); // NUL inside
    fails(withTlv(tlv(0xea, Buffer.concat([Buffer.from([1]), Buffer.from('vpce id')]))), 'bad-tlv'); // space
    fails(withTlv(tlv(0xea, Buffer.concat([Buffer.from([1]), Buffer.alloc(129, 0x61)]))), 'bad-tlv'); // too long
    assert.equal(header(withTlv(awsVpceIdTlv0('a'.repeat(128)))).awsVpceId, 'a'.repeat(128));
    fails(withTlv(Buffer.concat([awsVpceIdTlv0('vpce-1'), awsVpceIdTlv0('vpce-2')])), 'bad-tlv');
  });

  it('refuses TLVs that run past the header', () => {
    fails(raw(0x21, 0x11, Buffer.concat([inet, Buffer.from([0x04, 0x00, 0x05, 0, 0, 0, 0])])), 'bad-tlv');
    fails(raw(0x21, 0x11, Buffer.concat([inet, Buffer.from([0x04, 0x00])])), 'bad-tlv'); // stray bytes
    fails(raw(0x21, 0x11, Buffer.concat([inet, Buffer.from([0x04, 0xff, 0xff])])), 'bad-tlv'); // length overflow
    // The TLV is complete only if you read past the declared length: still bad.
    const body = Buffer.concat([inet, Buffer.from([0x04, 0x00, 0x02, 0xaa])]);
    fails(Buffer.concat([raw(0x21, 0x11, body), Buffer.from([0xbb])]), 'bad-tlv');
  });

  it('verifies CRC32C and refuses a wrong one or a malformed one', () => {
    const good = buildProxyV2({ command: 'PROXY', source: { address: '10.0.0.1', port: 1 }, destination: { address: '10.0.0.2', port: 2 }, withCrc32c: true });
    assert.equal(header(good).crc32cVerified, true);
    const bad = Buffer.from(good);
    bad[bad.length - 1] ^= 0x01;
    fails(bad, 'bad-crc');
    const flipped = Buffer.from(good);
    flipped[17] ^= 0x80;
    fails(flipped, 'bad-crc');
    fails(raw(0x21, 0x11, Buffer.concat([inet, tlv(0x03, Buffer.alloc(3))])), 'bad-tlv');
    const twice = raw(0x21, 0x11, Buffer.concat([inet, tlv(0x03, Buffer.alloc(4)), tlv(0x03, Buffer.alloc(4))]));
    fails(twice, 'bad-tlv');
    // No CRC TLV: nothing verified.
    assert.equal(header(raw(0x21, 0x11, inet)).crc32cVerified, false);
  });

  it('covers a CRC TLV placed before other TLVs, and LOCAL headers', () => {
    const body = Buffer.concat([inet, tlv(0x03, Buffer.alloc(4)), tlv(0x02, Buffer.from('h'))]);
    const buf = raw(0x20, 0x11, body);
    buf.writeUInt32BE(crc32c(buf), 16 + 12 + 3);
    const h = header(buf);
    assert.equal(h.crc32cVerified, true);
    assert.equal(h.command, 'LOCAL');
  });

  it('decodes ALPN, AUTHORITY, UNIQUE_ID and SSL', () => {
    const ssl = Buffer.concat([
      Buffer.from([0x07, 0, 0, 0, 0]),
      tlv(0x21, Buffer.from('TLSv1.3')),
      tlv(0x22, Buffer.from('client.example')),
      tlv(0x23, Buffer.from('TLS_AES_128_GCM_SHA256')),
      tlv(0x24, Buffer.from('SHA256')),
      tlv(0x25, Buffer.from('RSA2048')),
      tlv(0x99, Buffer.from('z')),
    ]);
    const h = header(
      buildProxyV2({
        command: 'PROXY',
        source: { address: '10.0.0.1', port: 1 },
        destination: { address: '10.0.0.2', port: 2 },
        tlvs: [
          { type: 0x01, value: Buffer.from('postgresql') },
          { type: 0x02, value: Buffer.from('bücher.example') },
          { type: 0x05, value: Buffer.alloc(128, 1) },
          { type: 0x20, value: ssl },
          { type: 0x30, value: Buffer.from('ns1') },
        ],
      }),
    );
    assert.equal(h.alpn, 'postgresql');
    assert.equal(h.authority, 'bücher.example');
    assert.deepEqual(h.uniqueId, Buffer.alloc(128, 1));
    assert.deepEqual(h.ssl, {
      client: 7,
      verify: 0,
      version: 'TLSv1.3',
      commonName: 'client.example',
      cipher: 'TLS_AES_128_GCM_SHA256',
      signatureAlgorithm: 'SHA256',
      keyAlgorithm: 'RSA2048',
      tlvs: [
        { type: 0x21, value: Buffer.from('TLSv1.3') },
        { type: 0x22, value: Buffer.from('client.example') },
        { type: 0x23, value: Buffer.from('TLS_AES_128_GCM_SHA256') },
        { type: 0x24, value: Buffer.from('SHA256') },
        { type: 0x25, value: Buffer.from('RSA2048') },
        { type: 0x99, value: Buffer.from('z') },
      ],
    });
    assert.equal(h.tlvs.length, 5);
  });

  it('refuses malformed ALPN, AUTHORITY, UNIQUE_ID and SSL TLVs', () => {
    const withTlv = (t: Buffer): Buffer => raw(0x21, 0x11, Buffer.concat([inet, t]));
    fails(withTlv(tlv(0x01, Buffer.alloc(0))), 'bad-tlv');
    fails(withTlv(tlv(0x02, Buffer.from([0xc3, 0x28]))), 'bad-tlv'); // invalid UTF-8
    fails(withTlv(tlv(0x02, Buffer.alloc(256, 0x61))), 'bad-tlv');
    fails(withTlv(tlv(0x05, Buffer.alloc(129))), 'bad-tlv');
    fails(withTlv(tlv(0x20, Buffer.alloc(4))), 'bad-tlv');
    fails(withTlv(tlv(0x20, Buffer.concat([Buffer.alloc(5), Buffer.from([0x21, 0x00, 0x09, 0x41])]))), 'bad-tlv');
    fails(withTlv(Buffer.concat([tlv(0x01, Buffer.from('a')), tlv(0x01, Buffer.from('b'))])), 'bad-tlv');
  });

  it('copies TLV values out of the input buffer', () => {
    const buf = raw(0x21, 0x11, Buffer.concat([inet, tlv(0xe0, Buffer.from('abc'))]));
    const h = header(buf);
    buf.fill(0);
    assert.deepEqual(h.tlvs[0].value, Buffer.from('abc'));
  });
});

describe('buildProxyV2', () => {
  it('round-trips through the parser', () => {
    const built = buildProxyV2({
      command: 'PROXY',
      source: { address: '::ffff:10.0.0.1', port: 5000 },
      destination: { address: 'fd00::5', port: 5432 },
      tlvs: [awsVpceIdTlv('vpce-0123456789abcdef0')],
      withCrc32c: true,
    });
    const h = header(built);
    assert.deepEqual(
      [h.family, h.source, h.destination, h.awsVpceId, h.crc32cVerified, h.tlvs.map((t) => t.type)],
      ['inet6', { address: '::ffff:10.0.0.1', port: 5000 }, { address: 'fd00::5', port: 5432 }, 'vpce-0123456789abcdef0', true, [0xea, 0x03]],
    );
  });

  it('refuses addresses that do not fit the family', () => {
    assert.throws(
      () => buildProxyV2({ command: 'PROXY', family: 'inet', source: { address: '::1', port: 1 }, destination: { address: '::1', port: 1 } }),
      TypeError,
    );
    assert.throws(() => buildProxyV2({ command: 'PROXY', family: 'inet' }), TypeError);
  });
});

function awsVpceIdTlv0(id: string): Buffer {
  const t = awsVpceIdTlv(id);
  return tlv(t.type, t.value);
}
