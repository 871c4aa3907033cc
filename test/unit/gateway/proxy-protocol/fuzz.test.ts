// Fuzzing: whatever the bytes, the parser returns 'incomplete' or 'ok' or throws a
// ProxyProtocolError, never anything else, never reads past what it reports consuming, and
// never accepts a header it would have refused given fewer bytes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  awsVpceIdTlv,
  azureLinkIdTlv,
  buildProxyV1,
  buildProxyV2,
  parseProxyHeader,
  ProxyProtocolError,
  proxyV2Signature,
  type ProxyParseResult,
  type ProxyTlv,
} from '../../../../src/gateway/proxy-protocol/index.js';

const maxHeaderBytes = 1024;

/** Parses; returns the result or the error reason; fails the test on any other throw. */
function attempt(buf: Buffer): ProxyParseResult | string {
  try {
    return parseProxyHeader(buf, { maxHeaderBytes });
  } catch (e) {
    if (!(e instanceof ProxyProtocolError)) throw new Error(`non-ProxyProtocolError thrown: ${String(e)}`);
    return e.reason;
  }
}

/** The invariants every outcome must keep. */
function check(buf: Buffer): ProxyParseResult | string {
  const result = attempt(buf);
  if (typeof result === 'string' || result.status === 'incomplete') return result;
  assert.ok(result.consumed > 0 && result.consumed <= buf.length);
  assert.ok(result.consumed <= maxHeaderBytes);
  // Only the header's own bytes were looked at: the same bytes alone give the same header,
  // whatever follows them.
  const alone = attempt(buf.subarray(0, result.consumed));
  assert.deepEqual(alone, result);
  const followed = attempt(Buffer.concat([buf.subarray(0, result.consumed), Buffer.from([0x0d, 0x0a, 0x50, 0xff])]));
  assert.deepEqual(followed, result);
  // Fed progressively, it waits and then agrees.
  for (const n of [0, 1, 12, 13, 14, 15, 16, result.consumed - 1]) {
    if (n < result.consumed) assert.deepEqual(attempt(buf.subarray(0, n)), { status: 'incomplete' }, `prefix ${n}`);
  }
  return result;
}

const address4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const address6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
const port = fc.nat(65535);
// Valid TLVs: raw ones only of types without a meaning here (custom range, NOOP, NETNS), and
// each decoded type at most once (the parser refuses duplicates).
const rawType = fc.constantFrom(0x04, 0x30, 0xe0, 0xe1, 0xe5, 0xef);
const tlvArb: fc.Arbitrary<ProxyTlv> = fc.oneof(
  fc.record({ type: rawType, value: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) }),
  fc.nat(0xffffffff).map(azureLinkIdTlv),
  fc.stringMatching(/^vpce-[0-9a-f]{1,17}$/).map(awsVpceIdTlv),
  fc.constant({ type: 0x01, value: Buffer.from('postgresql') }),
);
const tlvList = fc.uniqueArray(tlvArb, {
  maxLength: 4,
  selector: (t) => (t.type === 0x01 || t.type === 0xea || t.type === 0xee ? `${t.type}` : `${t.type}:${t.value.toString('hex')}`),
});

const validV2 = fc
  .oneof(
    fc.record({ src: address4, dst: address4, sp: port, dp: port, family: fc.constant('inet' as const) }),
    fc.record({ src: address6, dst: address6, sp: port, dp: port, family: fc.constant('inet6' as const) }),
    fc.record({ src: fc.constant('/a'), dst: fc.constant('/b'), sp: fc.constant(0), dp: fc.constant(0), family: fc.constant('unix' as const) }),
  )
  .chain((a) =>
    fc.record({ local: fc.boolean(), tlvs: tlvList, crc: fc.boolean() }).map((o) => ({
      addresses: a,
      bytes: buildProxyV2({
        command: o.local ? 'LOCAL' : 'PROXY',
        family: a.family,
        source: { address: a.src, port: a.sp },
        destination: { address: a.dst, port: a.dp },
        tlvs: o.tlvs,
        withCrc32c: o.crc,
      }),
      crc: o.crc,
    })),
  );

const validV1 = fc
  .oneof(fc.record({ s: address4, d: address4, sp: port, dp: port }), fc.record({ s: address6, d: address6, sp: port, dp: port }))
  .map((r) => buildProxyV1({ source: { address: r.s, port: r.sp }, destination: { address: r.d, port: r.dp } }));

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'cut'; at: number }
  | { kind: 'insert'; at: number; byte: number }
  | { kind: 'length'; value: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({ kind: fc.constant('length' as const), value: fc.nat(0xffff) }),
);

function mutate(buf: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(buf);
  if (out.length === 0) return out;
  const at = 'at' in m ? m.at % out.length : 0;
  switch (m.kind) {
    case 'flip':
      out[at] ^= m.xor;
      return out;
    case 'cut':
      return out.subarray(0, at);
    case 'insert':
      return Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    case 'length':
      if (out.length >= 16) out.writeUInt16BE(m.value, 14);
      return out;
  }
}

describe('PROXY parser fuzzing (fast-check)', () => {
  it('random bytes, with and without a signature in front: only returns or throws ProxyProtocolError', () => {
    const prefix = fc.constantFrom(
      Buffer.alloc(0),
      proxyV2Signature,
      Buffer.from('PROXY '),
      Buffer.from('PROXY TCP4 '),
      Buffer.concat([proxyV2Signature, Buffer.from([0x21, 0x11])]),
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 300 }), (p, tail) => {
        check(Buffer.concat([p, Buffer.from(tail)]));
      }),
      { numRuns: 5000 },
    );
  });

  it('valid v2 headers parse; any mutation only returns or throws ProxyProtocolError', () => {
    fc.assert(
      fc.property(validV2, fc.array(mutation, { minLength: 1, maxLength: 3 }), (v, mutations) => {
        const result = check(v.bytes);
        assert.ok(typeof result !== 'string' && result.status === 'ok', `valid header refused: ${String(result)}`);
        assert.equal(result.consumed, v.bytes.length);
        assert.equal(result.header.crc32cVerified, v.crc);
        if (result.header.command === 'PROXY') {
          assert.equal(result.header.family, v.addresses.family);
          assert.equal(result.header.source?.port, v.addresses.sp);
        }
        let bytes = v.bytes;
        for (const m of mutations) bytes = mutate(bytes, m);
        check(bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it('a single changed byte in a CRC-protected header is never accepted as verified', () => {
    fc.assert(
      fc.property(
        validV2.filter((v) => v.crc),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (v, at, xor) => {
          const bytes = mutate(v.bytes, { kind: 'flip', at, xor });
          const result = check(bytes);
          if (typeof result !== 'string' && result.status === 'ok') assert.equal(result.header.crc32cVerified, false);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('valid v1 lines parse; mutated ones only return or throw ProxyProtocolError', () => {
    fc.assert(
      fc.property(validV1, fc.array(mutation, { minLength: 1, maxLength: 3 }), (line, mutations) => {
        const result = check(line);
        assert.ok(typeof result !== 'string' && result.status === 'ok');
        assert.equal(result.consumed, line.length);
        let bytes = line;
        for (const m of mutations) bytes = mutate(bytes, m);
        check(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});
