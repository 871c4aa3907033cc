// Country, autonomous system and organization of a client address, from offline data:
// country from an MMDB file (default: @ip-location-db/geo-whois-asn-country-mmdb, read with
// `maxmind`), ASN and organization from the @ip-location-db/asn CSV files, loaded lazily into
// typed arrays (see asn-loader.ts). Loopback, private, link-local, unique-local and reserved
// addresses are their own location class and are never looked up.
//
// lookup() never throws. Text that is not an IP address (or longer than any address) is
// { kind: 'reserved' }: it has no place on the map either, and the detectors treat it as one
// more non-public location class. IPv4-mapped IPv6 (::ffff:a.b.c.d) is looked up as the IPv4
// address; a zone id ("fe80::1%eth0", as sockets report link-local peers) is ignored.

import { createRequire } from 'node:module';
import path from 'node:path';
import maxmind, { type Reader, type Response } from 'maxmind';
import { formatIpv4, parseIpv4Value, parseIpv6Words } from '../../network/ip-text.js';
import { classifyIpv4, classifyIpv6, type AddressClass } from './address-class.js';
import { loadAsnTable, type AsnLoadStats } from './asn-loader.js';
import { findIpv4, findIpv6, NO_ORGANIZATION, type AsnTable, type RangeColumns } from './asn-table.js';
import { GeoDataError } from './errors.js';

export type Location =
  | { readonly kind: AddressClass }
  | { readonly kind: 'public'; readonly country: string | null; readonly asn: number | null; readonly organization: string | null };

export interface GeoIpOptions {
  /** MMDB file with `country_code` (ip-location-db) or `country.iso_code` (GeoLite2-style) records. */
  readonly countryDb?: string;
  /** Directory holding asn-ipv4-num.csv and asn-ipv6.csv (the @ip-location-db/asn layout). */
  readonly asnDir?: string;
  /**
   * 'lazy' (default): the ASN tables start loading on the first public lookup (or loadAsn());
   * lookups made before they are ready have asn and organization null; after a failed load
   * (asnState 'failed', asnError says why) they stay null until loadAsn() succeeds.
   * 'eager': openGeoIp() resolves once they are loaded. 'off': never loaded.
   */
  readonly asn?: 'lazy' | 'eager' | 'off';
}

export type AsnState = 'not-loaded' | 'loading' | 'ready' | 'failed';

export interface GeoIp {
  lookup(address: string): Location;
  /** Loads the ASN tables if not yet loaded (again after a failure); resolves with what it took. */
  loadAsn(): Promise<AsnLoadStats>;
  readonly asnState: AsnState;
  /** Why the last ASN load failed, while asnState is 'failed'. */
  readonly asnError: GeoDataError | null;
}

const require = createRequire(import.meta.url);
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`));

export const defaultCountryDb = (): string => path.join(packageDir('@ip-location-db/geo-whois-asn-country-mmdb'), 'geo-whois-asn-country.mmdb');
export const defaultAsnDir = (): string => packageDir('@ip-location-db/asn');

/** Opens the country database (throws GeoDataError when it cannot be used). */
export async function openGeoIp(options: GeoIpOptions = {}): Promise<GeoIp> {
  const file = options.countryDb ?? defaultCountryDb();
  let reader: Reader<Response>;
  try {
    reader = await maxmind.open<Response>(file, { cache: { max: 4096 } });
  } catch (err) {
    throw new GeoDataError(file, `cannot open it as a MaxMind DB (${(err as Error).message})`);
  }
  const geo = new GeoIpReader(reader, options.asnDir ?? defaultAsnDir(), options.asn ?? 'lazy');
  if (options.asn === 'eager') await geo.loadAsn();
  return geo;
}

const CLASS: Readonly<Record<AddressClass, Location>> = Object.freeze({
  loopback: Object.freeze({ kind: 'loopback' }),
  private: Object.freeze({ kind: 'private' }),
  'link-local': Object.freeze({ kind: 'link-local' }),
  'unique-local': Object.freeze({ kind: 'unique-local' }),
  reserved: Object.freeze({ kind: 'reserved' }),
});

/** Longest IP text a socket reports: full IPv6 with an IPv4 tail (45) plus a short zone id. */
const MAX_ADDRESS_TEXT = 64;

class GeoIpReader implements GeoIp {
  asnState: AsnState = 'not-loaded';
  asnError: GeoDataError | null = null;
  private table: AsnTable | null = null;
  private loading: Promise<AsnLoadStats> | null = null;

  constructor(
    private readonly country: Reader<Response>,
    private readonly asnDir: string,
    private readonly asnMode: 'lazy' | 'eager' | 'off',
  ) {}

  lookup(address: string): Location {
    if (typeof address !== 'string' || address.length > MAX_ADDRESS_TEXT) return CLASS.reserved;
    let text = address;
    const v4 = parseIpv4Value(text);
    if (v4 >= 0) return this.ipv4(v4, text);
    const zone = text.indexOf('%');
    if (zone > 0) text = text.slice(0, zone);
    const w = parseIpv6Words(text);
    if (w === null) return CLASS.reserved;
    if (w.w0 === 0 && w.w1 === 0 && w.w2 === 0xffff) return this.ipv4(w.w3, null);
    const special = classifyIpv6(w);
    if (special !== null) return CLASS[special];
    const t = this.asnTable();
    const row = t === null ? -1 : findIpv6(t.v6, w.w0, w.w1, w.w2, w.w3);
    return this.place(text, t, t?.v6, row);
  }

  loadAsn(): Promise<AsnLoadStats> {
    if (this.loading) return this.loading;
    this.asnState = 'loading';
    this.asnError = null;
    this.loading = loadAsnTable(this.asnDir).then(
      ({ table, stats }) => {
        this.table = table;
        this.asnState = 'ready';
        return stats;
      },
      (err: unknown) => {
        this.asnError = err instanceof GeoDataError ? err : new GeoDataError(this.asnDir, String(err));
        this.asnState = 'failed';
        this.loading = null;
        throw this.asnError;
      },
    );
    return this.loading;
  }

  private ipv4(v: number, text: string | null): Location {
    const special = classifyIpv4(v);
    if (special !== null) return CLASS[special];
    const t = this.asnTable();
    const row = t === null ? -1 : findIpv4(t.v4, v);
    return this.place(text ?? formatIpv4(v), t, t?.v4, row);
  }

  private place(text: string, t: AsnTable | null, c: RangeColumns | undefined, row: number): Location {
    const hit = row >= 0 && t !== null && c !== undefined;
    const org = hit ? c.orgs[row]! : NO_ORGANIZATION;
    const asn = hit ? c.asns[row]! : 0;
    return {
      kind: 'public',
      country: this.countryOf(text),
      asn: asn === 0 ? null : asn,
      organization: org === NO_ORGANIZATION ? null : (t!.organizations[org] ?? null),
    };
  }

  /** The ASN table when loaded; on first need in 'lazy' mode, starts loading it. */
  private asnTable(): AsnTable | null {
    if (this.table === null && this.asnMode === 'lazy' && this.asnState === 'not-loaded') {
      this.loadAsn().catch(() => undefined); // the failure stays in asnState / asnError
    }
    return this.table;
  }

  private countryOf(text: string): string | null {
    let record: unknown;
    try {
      record = this.country.get(text);
    } catch {
      return null;
    }
    if (record === null || typeof record !== 'object') return null;
    const r = record as { country_code?: unknown; country?: { iso_code?: unknown }; registered_country?: { iso_code?: unknown } };
    const code = r.country_code ?? r.country?.iso_code ?? r.registered_country?.iso_code;
    return typeof code === 'string' && /^[A-Z]{2}$/.test(code) ? code : null;
  }
}
