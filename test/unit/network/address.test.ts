import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { compareIp, formatIp, ipToKey, parseCidr, parseIp, validateCidr, validateIpRange, validateRuleName } from '../../../src/network/address.js';
import { formatIpv6, parseIpv4Value, parseIpv6Words } from '../../../src/network/ip-text.js';

describe('parseIp', () => {
  it('parses IPv4 to a uint32', () => {
    assert.deepEqual(parseIp('0.0.0.0'), { family: 4, value: 0 });
    assert.deepEqual(parseIp('255.255.255.255'), { family: 4, value: 0xffffffff });
    assert.deepEqual(parseIp('10.1.2.3'), { family: 4, value: 0x0a010203 });
  });

  it('rejects non-strict IPv4 forms', () => {
    for (const bad of [
      '01.2.3.4',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1.2.3.4 ',
      ' 1.2.3.4',
      '0x7f.0.0.1',
      '127.1',
      '1..2.3',
      '1.2.3.',
      '.1.2.3',
      '1.2.3.04',
      '',
    ]) {
      assert.equal(parseIp(bad), null, bad);
    }
  });

  it('parses IPv6 into four words', () => {
    assert.deepEqual(parseIp('::1'), { family: 6, w0: 0, w1: 0, w2: 0, w3: 1 });
    assert.deepEqual(parseIp('::'), { family: 6, w0: 0, w1: 0, w2: 0, w3: 0 });
    assert.deepEqual(parseIp('2001:DB8::ffff:1'), { family: 6, w0: 0x20010db8, w1: 0, w2: 0, w3: 0xffff0001 });
    assert.deepEqual(parseIp('1:2:3:4:5:6:7::'), { family: 6, w0: 0x10002, w1: 0x30004, w2: 0x50006, w3: 0x70000 });
    assert.deepEqual(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), {
      family: 6,
      w0: 0xffffffff,
      w1: 0xffffffff,
      w2: 0xffffffff,
      w3: 0xffffffff,
    });
  });

  it('judges IPv4-mapped IPv6 as IPv4, but keeps IPv4-compatible ::a.b.c.d as IPv6', () => {
    assert.deepEqual(parseIp('::ffff:1.2.3.4'), { family: 4, value: 0x01020304 });
    assert.deepEqual(parseIp('::FFFF:0102:0304'), { family: 4, value: 0x01020304 });
    assert.deepEqual(parseIp('0:0:0:0:0:ffff:a00:1'), { family: 4, value: 0x0a000001 });
    assert.deepEqual(parseIp('::1.2.3.4'), { family: 6, w0: 0, w1: 0, w2: 0, w3: 0x01020304 });
  });

  it('rejects invalid IPv6 text', () => {
    for (const bad of [
      ':',
      ':::',
      '1:::2',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '12345::',
      'g::',
      ':1::',
      '1::2:',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8',
      'fe80::1%eth0',
      '[::1]',
      '::ffff:01.2.3.4',
      '::1.2.3',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::ffff:1.2.3.4:5',
      '1.2.3.4::',
    ]) {
      assert.equal(parseIp(bad), null, bad);
    }
  });

  it('agrees with ipaddr.js on addresses it formats (property)', () => {
    const words = fc.tuple(fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff));
    fc.assert(
      fc.property(words, fc.boolean(), (parts, rfc) => {
        const addr = new ipaddr.IPv6(parts);
        const text = rfc ? addr.toRFC5952String() : addr.toNormalizedString();
        const w = parseIpv6Words(text);
        assert.notEqual(w, null, text);
        const expected = [0, 2, 4, 6].map((k) => (parts[k] * 0x10000 + parts[k + 1]) >>> 0);
        assert.deepEqual([w!.w0, w!.w1, w!.w2, w!.w3], expected, text);
        // RFC 5952 output of ours equals ipaddr.js's, except the mapped form we write dotted.
        if (!addr.isIPv4MappedAddress()) assert.equal(formatIpv6(w!), addr.toRFC5952String());
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts exactly what ipaddr.js accepts on hex-group strings, with the same value (property)', () => {
    const group = fc.stringMatching(/^[0-9a-fA-F]{1,5}$/);
    fc.assert(
      fc.property(fc.array(group, { maxLength: 9 }), fc.integer({ min: -1, max: 9 }), (groups, gapAt) => {
        const text = gapAt < 0 || gapAt > groups.length ? groups.join(':') : `${groups.slice(0, gapAt).join(':')}::${groups.slice(gapAt).join(':')}`;
        const ours = parseIpv6Words(text);
        assert.equal(ours !== null, ipaddr.IPv6.isValid(text), text);
        if (ours !== null) {
          const p = ipaddr.IPv6.parse(text).parts;
          assert.deepEqual(
            [ours.w0, ours.w1, ours.w2, ours.w3],
            [0, 2, 4, 6].map((k) => (p[k] * 0x10000 + p[k + 1]) >>> 0),
          );
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('accepts only what ipaddr.js also accepts (property on near-IP strings)', () => {
    const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''));
    fc.assert(
      fc.property(fc.array(chars, { minLength: 1, maxLength: 40 }), (cs) => {
        const text = cs.join('');
        if (parseIpv6Words(text) !== null) assert.ok(ipaddr.IPv6.isValid(text), text);
        if (parseIpv4Value(text) >= 0) assert.ok(ipaddr.IPv4.isValidFourPartDecimal(text), text);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('formatIp, ipToKey, compareIp', () => {
  it('formats canonically', () => {
    assert.equal(formatIp(parseIp('::ffff:10.0.0.1')!), '10.0.0.1');
    assert.equal(formatIp(parseIp('2001:0db8:0000:0000:0001:0000:0000:0001')!), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIp('0:0:0:0:0:0:0:1')!), '::1');
    assert.equal(formatIp(parseIp('1:0:2:3:4:5:6:7')!), '1:0:2:3:4:5:6:7');
  });

  it('gives ordered keys', () => {
    assert.equal(ipToKey(parseIp('1.2.3.4')!), 0x01020304);
    assert.equal(ipToKey(parseIp('ffff::')!), 0xffffn << 112n);
    assert.ok(compareIp(parseIp('::2')!, parseIp('::1:0')!) < 0);
    assert.ok(compareIp(parseIp('8000::')!, parseIp('7fff::ffff')!) > 0);
    assert.equal(compareIp(parseIp('10.0.0.1')!, parseIp('::ffff:10.0.0.1')!), 0);
    assert.throws(() => compareIp(parseIp('::1')!, parseIp('1.1.1.1')!), TypeError);
  });
});

describe('validateIpRange', () => {
  it('accepts valid ranges', () => {
    assert.equal(validateIpRange('0.0.0.0', '255.255.255.255'), null);
    assert.equal(validateIpRange('10.0.0.1', '10.0.0.1'), null);
    assert.equal(validateIpRange('::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), null);
    assert.equal(validateIpRange('::ffff:1.2.3.4', '1.2.3.5'), null);
  });

  it('names the wrong field', () => {
    assert.equal(validateIpRange('10.0.0.256', '10.0.0.1'), 'startIpAddress "10.0.0.256" is not a valid IPv4 or IPv6 address');
    assert.equal(validateIpRange('10.0.0.1', 'nope'), 'endIpAddress "nope" is not a valid IPv4 or IPv6 address');
    assert.equal(validateIpRange('10.0.0.2', '10.0.0.1'), 'startIpAddress "10.0.0.2" must be less than or equal to endIpAddress "10.0.0.1"');
    assert.equal(validateIpRange('::2', '::1'), 'startIpAddress "::2" must be less than or equal to endIpAddress "::1"');
  });

  it('refuses mixed families', () => {
    assert.equal(
      validateIpRange('10.0.0.1', '::1'),
      'startIpAddress "10.0.0.1" is IPv4 but endIpAddress "::1" is IPv6: both must be the same family (IPv4-mapped IPv6 counts as IPv4)',
    );
    assert.match(validateIpRange('::', '::ffff:1.2.3.4')!, /is IPv6 but endIpAddress "::ffff:1.2.3.4" is IPv4/);
  });
});

describe('validateRuleName', () => {
  it('accepts 1–128 letters, digits, - and _', () => {
    assert.equal(validateRuleName('a'), null);
    assert.equal(validateRuleName('Allow_office-1'), null);
    assert.equal(validateRuleName('x'.repeat(128)), null);
  });

  it('refuses the rest with a reason', () => {
    assert.equal(validateRuleName(''), 'rule name must not be empty');
    assert.equal(validateRuleName('x'.repeat(129)), 'rule name is 129 characters long: at most 128 are allowed');
    assert.equal(validateRuleName('a b'), 'rule name "a b" may only contain letters, digits, "-" and "_"');
    assert.equal(validateRuleName('é'), 'rule name "é" may only contain letters, digits, "-" and "_"');
    assert.equal(validateRuleName('a.b'), 'rule name "a.b" may only contain letters, digits, "-" and "_"');
  });
});

describe('parseCidr / validateCidr', () => {
  it('parses IPv4 and IPv6 blocks', () => {
    assert.deepEqual(parseCidr('10.1.0.0/16'), {
      family: 4,
      prefixLength: 16,
      first: { family: 4, value: 0x0a010000 },
      last: { family: 4, value: 0x0a01ffff },
    });
    assert.deepEqual(parseCidr('0.0.0.0/0'), {
      family: 4,
      prefixLength: 0,
      first: { family: 4, value: 0 },
      last: { family: 4, value: 0xffffffff },
    });
    assert.deepEqual(parseCidr('1.2.3.4/32'), {
      family: 4,
      prefixLength: 32,
      first: { family: 4, value: 0x01020304 },
      last: { family: 4, value: 0x01020304 },
    });
    const v6 = parseCidr('2001:db8::/32');
    assert.ok(typeof v6 !== 'string');
    assert.equal(formatIp(v6.first), '2001:db8::');
    assert.equal(formatIp(v6.last), '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff');
    assert.equal(validateCidr('::/0'), null);
    assert.equal(validateCidr('::1/128'), null);
  });

  it('refuses bad blocks with a reason', () => {
    assert.equal(validateCidr('10.1.0.1/16'), '"10.1.0.1/16" has host bits set: the block starts at 10.1.0.0/16');
    assert.equal(validateCidr('2001:db8::1/32'), '"2001:db8::1/32" has host bits set: the block starts at 2001:db8::/32');
    assert.equal(validateCidr('10.0.0.0'), '"10.0.0.0" is not in CIDR notation (address/prefix)');
    assert.equal(validateCidr('10.0.0.0/33'), 'prefix length "33" in "10.0.0.0/33" must be an integer from 0 to 32');
    assert.equal(validateCidr('10.0.0.0/08'), 'prefix length "08" in "10.0.0.0/08" must be an integer from 0 to 32');
    assert.equal(validateCidr('::/129'), 'prefix length "129" in "::/129" must be an integer from 0 to 128');
    assert.equal(validateCidr('10.0.0.0/'), 'prefix length "" in "10.0.0.0/" must be an integer from 0 to 32');
    assert.equal(validateCidr('x/8'), '"x" in "x/8" is not a valid IPv4 or IPv6 address');
    assert.equal(validateCidr('::ffff:10.0.0.0/104'), '"::ffff:10.0.0.0/104" uses an IPv4-mapped IPv6 address: write the IPv4 block instead');
  });
});
