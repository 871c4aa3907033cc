// Address ranges → autonomous system number and organization, held in typed arrays and searched
// by bisection: O(log n), no allocation per lookup. IPv4 ranges use one uint32 per bound, IPv6
// ranges four big-endian uint32 words per bound. Ranges are sorted and disjoint (the builder
// makes them so); organization names are stored once and referenced by index.

export const NO_ORGANIZATION = 0xffffffff;

export interface RangeColumns {
  /** 1 for IPv4, 4 for IPv6: uint32 words per bound. */
  readonly stride: 1 | 4;
  readonly length: number;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly asns: Uint32Array;
  /** Index into AsnTable.organizations, or NO_ORGANIZATION. */
  readonly orgs: Uint32Array;
}

export interface AsnTable {
  readonly v4: RangeColumns;
  readonly v6: RangeColumns;
  readonly organizations: readonly string[];
}

/** Row index of the IPv4 range holding v (unsigned 32-bit), or -1. */
export function findIpv4(c: RangeColumns, v: number): number {
  const starts = c.starts;
  let lo = 0;
  let hi = c.length - 1;
  if (hi < 0 || v < starts[0]!) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= v) lo = mid;
    else hi = mid - 1;
  }
  return v <= c.ends[lo]! ? lo : -1;
}

/** Row index of the IPv6 range holding the address w0:w1:w2:w3 (big-endian words), or -1. */
export function findIpv6(c: RangeColumns, w0: number, w1: number, w2: number, w3: number): number {
  const s = c.starts;
  let lo = 0;
  let hi = c.length - 1;
  if (hi < 0 || compareAt(s, 0, w0, w1, w2, w3) > 0) return -1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (compareAt(s, mid * 4, w0, w1, w2, w3) <= 0) lo = mid;
    else hi = mid - 1;
  }
  return compareAt(c.ends, lo * 4, w0, w1, w2, w3) >= 0 ? lo : -1;
}

/** Sign of (words at a[o..o+3]) − (w0,w1,w2,w3). */
export function compareAt(a: Uint32Array, o: number, w0: number, w1: number, w2: number, w3: number): number {
  return a[o]! - w0 || a[o + 1]! - w1 || a[o + 2]! - w2 || a[o + 3]! - w3;
}
