// Country and network (ASN) of an address, from offline data shipped in npm packages:
// @ip-location-db/geo-whois-asn-country-mmdb (country, CC BY 4.0 by NRO; MaxMind DB format read
// with `maxmind`) and @ip-location-db/asn (ranges → ASN and organization, CC BY 4.0 by
// RouteViews, DB-IP and NRO; CSV loaded once into sorted typed arrays, binary search).
// Loopback, private, link-local, unique-local and reserved addresses are their own location
// class: no lookup, no country.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import maxmind, { type Reader, type Response } from 'maxmind';
import { formatIp, parseIp, type ParsedIp } from '../../network/address.js';
import type { Location, LocationSource } from '../detectors/login-anomaly.js';
import { asnDirectory, parseAsnTables, V4_FILE, V6_FILE, type AsnTable, type AsnTables } from './asn-tables.js';

const require = createRequire(import.meta.url);
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`));

export class GeoIp implements LocationSource {
  private v4: AsnTable | null = null;
  private v6: AsnTable | null = null;
  private orgNames: readonly string[] = [];

  private constructor(private readonly country: Reader<Response>) {}

  /** Opens the country database at once; the ASN tables load in the background (`ready`). */
  static async open(): Promise<GeoIp & { ready: Promise<void> }> {
    const reader = await maxmind.open(path.join(packageDir('@ip-location-db/geo-whois-asn-country-mmdb'), 'geo-whois-asn-country.mmdb'));
    const geo = new GeoIp(reader) as GeoIp & { ready: Promise<void> };
    geo.ready = geo.loadAsn().catch(() => undefined);
    return geo;
  }

  lookup(address: string): Location {
    const ip = parseIp(address);
    if (!ip) return { kind: 'reserved' };
    const special = classify(ip);
    if (special) return { kind: special };
    let country: string | null = null;
    try {
      country = (this.country.get(formatIp(ip)) as { country_code?: string } | null)?.country_code ?? null;
    } catch {
      country = null;
    }
    const hit = ip.family === 4 ? find(this.v4, [ip.value]) : find(this.v6, [ip.w0, ip.w1, ip.w2, ip.w3]);
    return {
      kind: 'public',
      country,
      asn: hit === -1 ? null : (ip.family === 4 ? this.v4! : this.v6!).asns[hit]!,
      organization: hit === -1 ? null : (this.orgNames[(ip.family === 4 ? this.v4! : this.v6!).orgs[hit]!] ?? null),
    };
  }

  /** The ASN tables, parsed in a thread of their own (asn-worker.ts); in this thread (the files
   * read asynchronously) only when that thread fails. */
  private async loadAsn(): Promise<void> {
    const t = await loadInWorker().catch(async () => {
      const dir = asnDirectory();
      return parseAsnTables(await readFile(path.join(dir, V4_FILE), 'utf8'), await readFile(path.join(dir, V6_FILE), 'utf8'));
    });
    this.orgNames = t.orgNames;
    this.v4 = t.v4;
    this.v6 = t.v6;
  }
}

const ASN_WORKER_URL = new URL('./asn-worker.js', import.meta.url);

function loadInWorker(): Promise<AsnTables> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(ASN_WORKER_URL, { name: 'pgwarden asn loader' });
    worker.unref();
    worker.once('message', (m: { ok: true; tables: AsnTables } | { ok: false; message: string }) => {
      if (m.ok) resolve(m.tables);
      else reject(new Error(m.message));
    });
    worker.once('error', reject);
    worker.once('exit', () => reject(new Error('the ASN loader thread ended without its tables')));
  });
}

/** Index of the range holding `key` (its words, most significant first), or -1. */
function find(t: AsnTable | null, key: readonly number[]): number {
  if (!t) return -1;
  const w = t.words;
  let lo = 0;
  let hi = t.asns.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (compare(t.starts, mid * w, key) > 0) hi = mid - 1;
    else if (compare(t.ends, mid * w, key) < 0) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** The bound at words[at…] against `key`: negative, zero or positive. */
function compare(words: Uint32Array, at: number, key: readonly number[]): number {
  for (let i = 0; i < key.length; i++) {
    const d = words[at + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

type Special = 'loopback' | 'private' | 'link-local' | 'unique-local' | 'reserved';

function classify(ip: ParsedIp): Special | null {
  if (ip.family === 4) {
    const v = ip.value;
    const a = v >>> 24;
    const b = (v >>> 16) & 0xff;
    if (a === 127) return 'loopback';
    if (a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b < 128)) return 'private';
    if (a === 169 && b === 254) return 'link-local';
    if (a === 0 || a >= 224) return 'reserved';
    return null;
  }
  if (ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0 && ip.w3 <= 1) return ip.w3 === 1 ? 'loopback' : 'reserved';
  const top = ip.w0 >>> 16;
  if ((top & 0xfe00) === 0xfc00) return 'unique-local';
  if ((top & 0xffc0) === 0xfe80) return 'link-local';
  if ((top & 0xff00) === 0xff00) return 'reserved';
  if ((top & 0xe000) !== 0x2000) return 'reserved'; // outside global unicast 2000::/3
  return null;
}
