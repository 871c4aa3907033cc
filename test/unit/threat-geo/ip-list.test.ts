// Operator IP lists: the parser (comments, blank lines, IPv4/IPv6, CIDR, Tor bulk exit list,
// bad lines with their numbers) and the compiled matcher, checked against a plain scan; both
// fuzzed with fast-check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { cidrContains, parseIp } from '../../../src/network/address.js';
import { parseIpList, type ParsedIpList } from '../../../src/threat/intel/ip-list.js';
import { compileIpLists } from '../../../src/threat/intel/ip-matcher.js';

const fixture = (name: string) => readFileSync(new URL(`../../../../test/fixtures/threat-intel/${name}`, import.meta.url), 'utf8');

test('a feed with comments, blank lines, IPv4 and IPv6 blocks', () => {
  const l = parseIpList(fixture('feed.txt'), 'feed');
  assert.deepEqual(l.errors, []);
  assert.deepEqual(l.entries.map((e) => [e.line, e.text, e.cidr.prefixLength]), [
    [4, '203.0.113.0/24', 24],
    [5, '198.51.100.7', 32],
    [6, '5.188.10.0/23', 23],
    [7, '2001:db8:bad::/48', 48],
    [8, '::ffff:45.9.20.1', 32],
  ]);
  const m = compileIpLists([l]);
  assert.deepEqual(m.match('203.0.113.77'), { list: 'feed', entry: '203.0.113.0/24' });
  assert.deepEqual(m.match('5.188.11.255'), { list: 'feed', entry: '5.188.10.0/23' });
  assert.equal(m.match('5.188.12.0'), null);
  assert.deepEqual(m.match('2001:db8:bad:1::5'), { list: 'feed', entry: '2001:db8:bad::/48' });
  assert.deepEqual(m.match('45.9.20.1'), { list: 'feed', entry: '::ffff:45.9.20.1' }, 'mapped entry matches the IPv4 client');
  assert.deepEqual(m.match('::ffff:198.51.100.7'), { list: 'feed', entry: '198.51.100.7' }, 'mapped client matches the IPv4 entry');
  assert.equal(m.match('198.51.100.8'), null);
});

test('the Tor bulk exit list: one address per line', () => {
  const l = parseIpList(fixture('tor-bulk-exit-list.txt'), 'tor-exits');
  assert.equal(l.errorCount, 0);
  assert.equal(l.entries.length, 10);
  const m = compileIpLists([l]);
  assert.deepEqual(m.match('185.220.101.33'), { list: 'tor-exits', entry: '185.220.101.33' });
  assert.deepEqual(m.match('2a0b:f4c2:0:0::21'), { list: 'tor-exits', entry: '2a0b:f4c2::21' });
  assert.equal(m.match('185.220.101.34'), null);
  assert.equal(m.match('8.8.8.8'), null);
});

test('bad lines come back with their numbers and reasons; the good ones are kept', () => {
  const l = parseIpList(fixture('bad-lines.txt'), 'bad');
  assert.deepEqual(l.entries.map((e) => e.text), ['192.0.2.1', '198.51.100.0/24']);
  assert.equal(l.errorCount, 4);
  assert.deepEqual(l.errors.map((e) => e.line), [3, 4, 5, 7]);
  assert.match(l.errors[0]!.reason, /host bits set: the block starts at 10\.0\.0\.0\/8/);
  assert.match(l.errors[1]!.reason, /"not-an-address" is not an IPv4 or IPv6 address or CIDR block/);
  assert.match(l.errors[2]!.reason, /prefix length "129"/);
  assert.match(l.errors[3]!.reason, /one address or CIDR block per line/);
  assert.equal(l.errors[1]!.text, 'not-an-address');
});

test('CRLF, a byte-order mark, tabs, long lines and zone ids', () => {
  const l = parseIpList(`\uFEFF1.2.3.4\r\n\t5.6.7.0/24\t# x\r\n${'9'.repeat(600)}\r\nfe80::1%eth0\r\n`, 'x');
  assert.deepEqual(l.entries.map((e) => e.text), ['1.2.3.4', '5.6.7.0/24']);
  assert.deepEqual(l.errors.map((e) => e.line), [3, 4]);
  assert.match(l.errors[0]!.reason, /longer than 512/);
  assert.ok(l.errors[0]!.text.length <= 121);
});

test('overlapping entries: the most specific block, then the earlier list, is reported', () => {
  const a = parseIpList('10.0.0.0/8\n10.1.0.0/16\n2001:db8::/32\n', 'wide');
  const b = parseIpList('10.1.2.3\n10.0.0.0/8\n2001:db8:1::/48\n', 'narrow');
  const m = compileIpLists([a, b]);
  assert.deepEqual(m.match('10.1.2.3'), { list: 'narrow', entry: '10.1.2.3' });
  assert.deepEqual(m.match('10.1.2.4'), { list: 'wide', entry: '10.1.0.0/16' });
  assert.deepEqual(m.match('10.2.0.0'), { list: 'wide', entry: '10.0.0.0/8' }, 'same block in both: the earlier list');
  assert.deepEqual(m.match('2001:db8:1::9'), { list: 'narrow', entry: '2001:db8:1::/48' });
  assert.deepEqual(m.match('2001:db8:2::9'), { list: 'wide', entry: '2001:db8::/32' });
  assert.equal(m.match('11.0.0.0'), null);
  assert.equal(m.match('not an ip'), null);
  assert.equal(compileIpLists([]).match('10.0.0.1'), null);
});

test('fuzz: parseIpList never throws and accounts for every non-blank line', () => {
  const lineArb = fc.oneof(fc.string({ maxLength: 40 }), fc.ipV4(), fc.ipV6(), fc.constantFrom('#', ';', '/', '::/0', '0.0.0.0/0', '\r', ' '));
  fc.assert(
    fc.property(fc.array(lineArb, { maxLength: 30 }), (lines) => {
      const l = parseIpList(lines.join('\n'), 'f');
      const used = new Set([...l.entries.map((e) => e.line), ...l.errors.map((e) => e.line)]);
      assert.equal(used.size, l.entries.length + l.errors.length, 'a line is an entry or an error, not both');
      for (const n of used) assert.ok(n >= 1 && n <= Math.max(1, lines.join('\n').split('\n').length));
    }),
    { numRuns: 2000 },
  );
  fc.assert(fc.property(fc.string({ maxLength: 2000, unit: 'binary' }), (s) => void parseIpList(s, 'b')), { numRuns: 1000 });
});

test('fuzz: the compiled matcher agrees with a plain scan of the entries', () => {
  const v4Block = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 32 })).map(([v, p]) => {
    const base = p === 32 ? v : v - (v % 2 ** (32 - p));
    return `${base >>> 24}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.${base & 255}/${p}`;
  });
  const v6Block = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })).map(([a, b]) => `2001:${a.toString(16)}:${b.toString(16)}::/48`);
  const listArb = fc.array(fc.oneof(v4Block, fc.ipV4(), v6Block), { maxLength: 20 }).map((xs) => xs.join('\n'));
  fc.assert(
    fc.property(fc.array(listArb, { minLength: 1, maxLength: 3 }), fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { maxLength: 20 }), (texts, probes) => {
      const lists: ParsedIpList[] = texts.map((t, i) => parseIpList(t, `l${i}`));
      const m = compileIpLists(lists);
      // Probe the listed blocks' own first addresses too, so hits are common.
      const all = probes.concat(lists.flatMap((l) => l.entries.map((e) => e.text.split('/')[0]!)));
      for (const a of all) {
        const ip = parseIp(a);
        if (!ip) continue;
        let best: { list: string; entry: string; p: number } | null = null;
        for (const l of lists) for (const e of l.entries) {
          if (cidrContains(e.cidr, ip) && (best === null || e.cidr.prefixLength > best.p)) best = { list: l.name, entry: e.text, p: e.cidr.prefixLength };
        }
        // Ties keep the first found: the earlier list, then the earlier line.
        assert.deepEqual(m.match(a), best && { list: best.list, entry: best.entry }, a);
      }
    }),
    { numRuns: 300 },
  );
});
