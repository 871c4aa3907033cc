// GeoIP lookups on the real shipped data (country MMDB + ASN CSV), the location classes that
// are never looked up, IPv4-mapped and zone-id forms, garbage input, the ASN loader on small
// files with known flaws, and the measured load time, memory and lookup rate (printed, not
// asserted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { defaultAsnDir, openGeoIp, type GeoIp, type Location } from '../../../src/threat/geo/geoip.js';
import { loadAsnTable } from '../../../src/threat/geo/asn-loader.js';
import { GeoDataError } from '../../../src/threat/geo/errors.js';
import type { LocationSource } from '../../../src/threat/detectors/login-anomaly.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/threat-intel/', import.meta.url));
const kinds = new Set(['loopback', 'private', 'link-local', 'unique-local', 'reserved', 'public']);

let shared: Promise<GeoIp> | null = null;
/** One GeoIp with the ASN tables loaded, shared by the tests of this file. */
const geo = () => (shared ??= openGeoIp({ asn: 'eager' }));
// (the measuring test below runs first and sets `shared`)

test('measured: country DB open + ASN load time, memory, lookups per second (printed, not asserted)', async () => {
  // First test of the file, so the memory delta is this process's first load of the data.
  const before = process.memoryUsage();
  const opening = openGeoIp();
  shared = opening;
  const g = await opening;
  const stats = await g.loadAsn();
  const after = process.memoryUsage();
  const { table } = await loadAsnTable(defaultAsnDir());
  const columns = [table.v4, table.v6].flatMap((c) => [c.starts, c.ends, c.asns, c.orgs]);
  const typedArrayMb = columns.reduce((n, a) => n + a.byteLength, 0) / 1048576;
  const organizationChars = table.organizations.reduce((n, o) => n + o.length, 0);
  const addresses: string[] = [];
  const rand = () => Math.floor(Math.random() * 2 ** 32);
  for (let i = 0; i < 50_000; i++) addresses.push(`${(rand() % 223) + 1}.${rand() % 256}.${rand() % 256}.${rand() % 256}`);
  for (let i = 0; i < 50_000; i++) addresses.push(`2${(rand() % 0xfff).toString(16).padStart(3, '0')}:${(rand() % 0xffff).toString(16)}::${(rand() % 0xffff).toString(16)}`);
  let publicHits = 0;
  for (const a of addresses) if (g.lookup(a).kind === 'public') publicHits++; // warm-up
  const rounds = 4;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (const a of addresses) g.lookup(a);
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    measure: 'threat-geo',
    asnLoadMs: stats.loadMs,
    ipv4Ranges: stats.ipv4Ranges,
    ipv6Ranges: stats.ipv6Ranges,
    organizations: stats.organizations,
    typedArrayMb: Math.round(typedArrayMb * 10) / 10,
    organizationChars,
    rssDeltaMb: Math.round((after.rss - before.rss) / 1048576),
    heapDeltaMb: Math.round((after.heapUsed - before.heapUsed) / 1048576),
    arrayBuffersDeltaMb: Math.round((after.arrayBuffers - before.arrayBuffers) / 1048576),
    lookups: rounds * addresses.length,
    lookupsPerSecond: Math.round((rounds * addresses.length) / seconds),
  }));
  assert.ok(publicHits > 50_000, 'most random addresses are public');
  assert.equal(stats.ipv4Ranges, table.v4.length);
});

test('8.8.8.8 is Google in the US; 1.1.1.1 is Cloudflare; 2001:4860:4860::8888 is Google', async () => {
  const g = await geo();
  assert.deepEqual(g.lookup('8.8.8.8'), { kind: 'public', country: 'US', asn: 15169, organization: 'Google LLC' });
  const cf = g.lookup('1.1.1.1');
  assert.equal(cf.kind, 'public');
  if (cf.kind !== 'public') return;
  assert.equal(cf.asn, 13335);
  assert.equal(cf.organization, 'Cloudflare, Inc.', 'quoted CSV field with a comma');
  assert.equal(cf.country, 'AU', 'what this database says for 1.1.1.1 (APNIC registration)');
  assert.deepEqual(g.lookup('2001:4860:4860::8888'), { kind: 'public', country: 'US', asn: 15169, organization: 'Google LLC' });
  assert.equal(g.asnState, 'ready');
  const source: LocationSource = g; // what the detectors call: checked by the compiler
  assert.equal(source.lookup('8.8.4.4').kind, 'public');
});

test('IPv4-mapped IPv6 is looked up as the IPv4 address, in any spelling', async () => {
  const g = await geo();
  const v4 = g.lookup('8.8.8.8');
  assert.deepEqual(g.lookup('::ffff:8.8.8.8'), v4);
  assert.deepEqual(g.lookup('::FFFF:808:808'), v4);
  assert.deepEqual(g.lookup('0:0:0:0:0:ffff:0808:0808'), v4);
  assert.deepEqual(g.lookup('::ffff:127.0.0.1'), { kind: 'loopback' });
  assert.deepEqual(g.lookup('::ffff:192.168.1.10'), { kind: 'private' });
});

test('loopback, private, link-local, unique-local and reserved addresses are their own class', async () => {
  const g = await geo();
  const cases: [string, Location['kind']][] = [
    ['127.0.0.1', 'loopback'], ['127.255.0.9', 'loopback'], ['::1', 'loopback'],
    ['10.0.0.1', 'private'], ['172.16.5.4', 'private'], ['172.31.255.255', 'private'], ['192.168.0.1', 'private'], ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link-local'], ['fe80::1', 'link-local'], ['fe80::1%eth0', 'link-local'], ['FEBF::abcd', 'link-local'],
    ['fc00::1', 'unique-local'], ['fd12:3456:789a::1', 'unique-local'],
    ['0.0.0.0', 'reserved'], ['224.0.0.1', 'reserved'], ['255.255.255.255', 'reserved'], ['240.1.2.3', 'reserved'],
    ['192.0.2.1', 'reserved'], ['198.51.100.20', 'reserved'], ['203.0.113.9', 'reserved'], ['198.18.0.1', 'reserved'],
    ['::', 'reserved'], ['ff02::1', 'reserved'], ['2001:db8::1', 'reserved'], ['64:ff9b::808:808', 'reserved'], ['::1.2.3.4', 'reserved'],
  ];
  for (const [address, kind] of cases) assert.deepEqual(g.lookup(address), { kind }, address);
  assert.equal(g.lookup('172.32.0.1').kind, 'public', 'just outside 172.16.0.0/12');
  assert.equal(g.lookup('100.128.0.1').kind, 'public', 'just outside 100.64.0.0/10');
});

test('text that is not an address is reserved, never an exception', async () => {
  const g = await geo();
  for (const bad of ['', 'localhost', '8.8.8', '8.8.8.8.8', '08.8.8.8', '8.8.8.8 ', ' 8.8.8.8', '[::1]', '::ffff:8.8.8.08', '1:2:3:4:5:6:7:8:9', 'x'.repeat(10_000), '%eth0', '8.8.8.8%eth0']) {
    assert.deepEqual(g.lookup(bad), { kind: 'reserved' }, JSON.stringify(bad));
  }
  assert.deepEqual(g.lookup(undefined as unknown as string), { kind: 'reserved' });
  assert.deepEqual(g.lookup(42 as unknown as string), { kind: 'reserved' });
});

test('fuzz: lookup never throws and always returns one of the location shapes', async () => {
  const g = await geo();
  const check = (l: Location) => {
    assert.ok(kinds.has(l.kind));
    if (l.kind === 'public') {
      assert.ok(l.country === null || /^[A-Z]{2}$/.test(l.country));
      assert.ok(l.asn === null || (Number.isInteger(l.asn) && l.asn > 0));
      assert.ok(l.organization === null || l.organization.length > 0);
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => check(g.lookup(s))), { numRuns: 3000 });
  fc.assert(fc.property(fc.ipV4(), (s) => check(g.lookup(s))), { numRuns: 3000 });
  fc.assert(fc.property(fc.ipV6(), (s) => check(g.lookup(s))), { numRuns: 3000 });
  fc.assert(fc.property(fc.ipV4(), (s) => assert.deepEqual(g.lookup(`::ffff:${s}`), g.lookup(s))), { numRuns: 1000 });
});

test('lazy mode: the ASN tables load on first need, lookups before that have no ASN', async () => {
  const g = await openGeoIp({ asnDir: `${fixtures}asn-mini` });
  assert.equal(g.asnState, 'not-loaded');
  const first = g.lookup('1.0.0.1');
  assert.deepEqual(first, { kind: 'public', country: 'AU', asn: null, organization: null });
  assert.equal(g.asnState, 'loading');
  await g.loadAsn();
  assert.deepEqual(g.lookup('1.0.0.1'), { kind: 'public', country: 'AU', asn: 13335, organization: 'Cloudflare, Inc.' });
  const off = await openGeoIp({ asn: 'off' });
  off.lookup('8.8.8.8');
  assert.equal(off.asnState, 'not-loaded');
});

test('ASN loader: quoted names, ASN 0, overlaps, malformed and out-of-order rows, CRLF', async () => {
  const { table, stats } = await loadAsnTable(`${fixtures}asn-mini`);
  assert.equal(stats.ipv4Ranges, 6, 'five usable rows, one of them split around a nested row');
  assert.equal(stats.ipv6Ranges, 3);
  assert.equal(stats.overlapsClipped, 1);
  assert.equal(stats.rowsSkipped, 4);
  assert.deepEqual(stats.skippedLines, ['asn-ipv4-num.csv:4', 'asn-ipv4-num.csv:5', 'asn-ipv4-num.csv:8', 'asn-ipv6.csv:3']);
  const g = await openGeoIp({ asnDir: `${fixtures}asn-mini`, asn: 'eager' });
  const at = (a: string) => {
    const l = g.lookup(a);
    return l.kind === 'public' ? [l.asn, l.organization] : l.kind;
  };
  assert.deepEqual(at('1.0.1.5'), [null, null], 'ASN 0 and an empty name are unknown');
  assert.deepEqual(at('1.0.2.5'), [null, null], 'a gap between ranges');
  assert.deepEqual(at('1.0.16.87'), [2519, 'Quote "Inc"']);
  assert.deepEqual(at('1.0.16.88'), [64500, 'Inner Overlap Org']);
  assert.deepEqual(at('1.0.16.138'), [64500, 'Inner Overlap Org']);
  assert.deepEqual(at('1.0.16.139'), [2519, 'Quote "Inc"'], 'the outer row resumes after the nested one');
  assert.deepEqual(at('1.0.16.255'), [2519, 'Quote "Inc"']);
  assert.deepEqual(at('1.0.17.0'), [null, null]);
  assert.deepEqual(at('2001:4860:4805::1'), [43515, 'Google Ireland Limited']);
  assert.deepEqual(at('2001:4860:4806::1'), [null, null]);
  assert.equal(table.organizations.filter((o) => o === 'Google LLC').length, 1);
});

test('missing data files are a GeoDataError naming the file', async () => {
  await assert.rejects(openGeoIp({ countryDb: `${fixtures}nope.mmdb` }), (e: unknown) => e instanceof GeoDataError && /nope\.mmdb/.test(e.message));
  await assert.rejects(loadAsnTable(`${fixtures}no-such-dir`), (e: unknown) => e instanceof GeoDataError && /asn-ipv4-num\.csv.*ENOENT/.test(e.message));
  const g = await openGeoIp({ asnDir: `${fixtures}no-such-dir` });
  assert.equal(g.lookup('8.8.8.8').kind, 'public', 'lookups go on without ASN data');
  await assert.rejects(g.loadAsn(), GeoDataError);
  assert.equal(g.asnState, 'failed');
  assert.match(g.asnError?.message ?? '', /no-such-dir/);
});
