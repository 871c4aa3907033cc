// GeoIp's ASN tables (threat/sources/geoip.ts) in typed arrays: IPv6 bounds as four 32-bit words.
// Checked against the shipped CSV itself, read here with BigInt: at the bounds of ranges picked
// at random, and just outside them, the lookup gives the range's ASN or none.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { parseAsnTables } from '../../../src/threat/sources/asn-tables.js';
import { GeoIp } from '../../../src/threat/sources/geoip.js';

const require = createRequire(import.meta.url);
const csv = (name: string) => readFileSync(path.join(path.dirname(require.resolve('@ip-location-db/asn/package.json')), name), 'utf8');

function v6Text(v: bigint): string {
  const parts: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) parts.push(((v >> shift) & 0xffffn).toString(16));
  return parts.join(':');
}

let geo: GeoIp;
/** The ASN of a public address (null: none known, or not public). */
const asnOf = (address: string) => {
  const l = geo.lookup(address);
  return l.kind === 'public' ? l.asn : null;
};

describe('GeoIp ASN lookups', () => {
  before(async () => {
    const g = await GeoIp.open();
    await g.ready;
    geo = g;
  });

  it('known networks', () => {
    assert.equal(asnOf('8.8.8.8'), 15169);
    assert.equal(asnOf('2001:4860:4860::8888'), 15169);
    assert.equal(asnOf('2606:4700:4700::1111'), 13335);
    assert.equal(geo.lookup('::1').kind, 'loopback');
    assert.equal(geo.lookup('fd00::1').kind, 'unique-local');
  });

  it('IPv6 range bounds and their neighbours agree with the CSV', () => {
    const rows = csv('asn-ipv6-num.csv')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [start, end, asn] = line.split(',');
        return { start: BigInt(start!), end: BigInt(end!), asn: Number(asn) };
      });
    const covering = (v: bigint) => rows.find((r) => r.start <= v && v <= r.end)?.asn ?? null;
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 300; n++) {
      const r = rows[Math.floor(random() * rows.length)]!;
      for (const v of [r.start, r.end, r.start + (r.end - r.start) / 2n]) assert.equal(asnOf(v6Text(v)), r.asn, v6Text(v));
      for (const v of [r.start - 1n, r.end + 1n]) {
        const got = geo.lookup(v6Text(v));
        if (got.kind === 'public') assert.equal(asnOf(v6Text(v)), covering(v), v6Text(v));
      }
    }
  });
});

describe('ASN CSV parsing (asn-tables.ts)', () => {
  it('quoted names, CRLF line ends, IPv6 bounds as four words; lines that are not ranges are skipped', () => {
    const v4 = '16777216,16777471,13335,"Cloudflare, Inc."\r\nnot a range\n16777472,16777727,4134,"The ""Quoted"" Net"\n\n';
    const v6 = `${2n ** 127n + 5n},${2n ** 128n - 1n},64500,Cloudflare, Inc.\n`;
    const t = parseAsnTables(v4, v6);
    assert.deepEqual([...t.v4.starts], [16777216, 16777472]);
    assert.deepEqual([...t.v4.ends], [16777471, 16777727]);
    assert.deepEqual([...t.v4.asns], [13335, 4134]);
    assert.deepEqual(
      [...t.v4.orgs].map((i) => t.orgNames[i]),
      ['Cloudflare, Inc.', 'The "Quoted" Net'],
    );
    assert.deepEqual([...t.v6.starts], [0x80000000, 0, 0, 5]);
    assert.deepEqual([...t.v6.ends], [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]);
    // An unquoted name keeps its commas (everything after the third one is the name).
    assert.equal(t.orgNames[t.v6.orgs[0]!], 'Cloudflare, Inc.');
  });
});
