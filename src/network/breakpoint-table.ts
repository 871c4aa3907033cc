// The labelled breakpoint tables behind FirewallIndex, one per address family, and the
// operations on them: full build, window rebuild (for updates), lookup.

import type { ParsedIpv6 } from './address.js';
import type { Ipv6Words } from './ip-text.js';
import { sweepRanges, type KeyOps } from './interval-sweep.js';

export interface Range<K> {
  readonly start: K;
  readonly end: K;
  readonly id: number;
  readonly name: string;
}

/** Breakpoint table: keys (stride 1 for IPv4, 4 words for IPv6) ascending, keys[0] = 0. */
export interface Table {
  readonly keys: Uint32Array;
  readonly labels: Int32Array;
}

export interface FamilyState<K> {
  readonly ranges: readonly Range<K>[];
  readonly table: Table;
}

export interface Codec<K> extends KeyOps<K> {
  readonly stride: number;
  readonly min: K;
  readonly max: K;
  write(keys: Uint32Array, i: number, key: K): void;
  read(keys: Uint32Array, i: number): K;
}

export const v4Codec: Codec<number> = {
  stride: 1,
  min: 0,
  max: 0xffffffff,
  compare: (a, b) => a - b,
  next: (k) => (k === 0xffffffff ? null : k + 1),
  uint32: (k) => k,
  write: (keys, i, key) => {
    keys[i] = key;
  },
  read: (keys, i) => keys[i],
};

const v6Max: Ipv6Words = { w0: 0xffffffff, w1: 0xffffffff, w2: 0xffffffff, w3: 0xffffffff };
export const v6Codec: Codec<Ipv6Words> = {
  stride: 4,
  min: { w0: 0, w1: 0, w2: 0, w3: 0 },
  max: v6Max,
  compare: (a, b) => a.w0 - b.w0 || a.w1 - b.w1 || a.w2 - b.w2 || a.w3 - b.w3,
  next: (k) => {
    if (k.w3 !== 0xffffffff) return { w0: k.w0, w1: k.w1, w2: k.w2, w3: k.w3 + 1 };
    if (k.w2 !== 0xffffffff) return { w0: k.w0, w1: k.w1, w2: k.w2 + 1, w3: 0 };
    if (k.w1 !== 0xffffffff) return { w0: k.w0, w1: k.w1 + 1, w2: 0, w3: 0 };
    if (k.w0 !== 0xffffffff) return { w0: k.w0 + 1, w1: 0, w2: 0, w3: 0 };
    return null;
  },
  write: (keys, i, key) => {
    const o = i * 4;
    keys[o] = key.w0;
    keys[o + 1] = key.w1;
    keys[o + 2] = key.w2;
    keys[o + 3] = key.w3;
  },
  read: (keys, i) => {
    const o = i * 4;
    return { w0: keys[o], w1: keys[o + 1], w2: keys[o + 2], w3: keys[o + 3] };
  },
};

function byName<K>(a: Range<K>, b: Range<K>): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function pack<K>(codec: Codec<K>, keys: readonly K[], labels: readonly number[]): Table {
  const packed = new Uint32Array(keys.length * codec.stride);
  for (let i = 0; i < keys.length; i++) codec.write(packed, i, keys[i]);
  return { keys: packed, labels: Int32Array.from(labels) };
}

export function fullBuild<K>(ranges: Range<K>[], codec: Codec<K>): FamilyState<K> {
  const sorted = ranges.slice().sort(byName);
  const bp = sweepRanges(sorted, codec, codec.min, codec.max);
  return { ranges, table: pack(codec, bp.keys, bp.labels) };
}

/** Index of the last breakpoint whose key is ≤ key (generic, for updates). */
function floorIndex<K>(codec: Codec<K>, table: Table, key: K): number {
  let lo = 0;
  let hi = table.labels.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (codec.compare(codec.read(table.keys, mid), key) <= 0) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Recomputes the pieces inside [from, to] from `ranges`; everything outside stays as it was. */
function rebuildWindow<K>(codec: Codec<K>, table: Table, ranges: readonly Range<K>[], from: K, to: K): Table {
  const overlapping = ranges.filter((r) => codec.compare(r.end, from) >= 0 && codec.compare(r.start, to) <= 0);
  overlapping.sort(byName);
  const bp = sweepRanges(overlapping, codec, from, to);
  const n = table.labels.length;
  const floorFrom = floorIndex(codec, table, from);
  const prefix = codec.compare(codec.read(table.keys, floorFrom), from) === 0 ? floorFrom : floorFrom + 1;
  const after = codec.next(to);
  let suffix = n;
  if (after !== null) {
    const p = floorIndex(codec, table, after);
    bp.keys.push(after);
    bp.labels.push(table.labels[p]);
    suffix = p + 1;
  }
  // Drop middle breakpoints that repeat the label before them (the seams with the prefix).
  const keys: K[] = [];
  const labels: number[] = [];
  let previous = prefix > 0 ? table.labels[prefix - 1] : NaN;
  for (let i = 0; i < bp.keys.length; i++) {
    if (bp.labels[i] === previous) continue;
    keys.push(bp.keys[i]);
    labels.push(bp.labels[i]);
    previous = bp.labels[i];
  }
  const size = prefix + keys.length + (n - suffix);
  const s = codec.stride;
  const out: Table = { keys: new Uint32Array(size * s), labels: new Int32Array(size) };
  out.keys.set(table.keys.subarray(0, prefix * s), 0);
  out.labels.set(table.labels.subarray(0, prefix), 0);
  for (let i = 0; i < keys.length; i++) {
    codec.write(out.keys, prefix + i, keys[i]);
    out.labels[prefix + i] = labels[i];
  }
  out.keys.set(table.keys.subarray(suffix * s), (prefix + keys.length) * s);
  out.labels.set(table.labels.subarray(suffix), prefix + keys.length);
  return out;
}

export function applyChange<K>(codec: Codec<K>, state: FamilyState<K>, removed: ReadonlySet<string>, added: readonly Range<K>[]): FamilyState<K> {
  const old = state.ranges;
  const hits: number[] = [];
  for (let i = 0; i < old.length; i++) if (removed.has(old[i].name)) hits.push(i);
  if (hits.length === 0 && added.length === 0) return state;
  if (hits.length + added.length > 64) {
    return fullBuild(old.filter((r) => !removed.has(r.name)).concat(added), codec);
  }
  const windows = hits.map((i) => old[i]);
  // Copy in bulk around the (few) removed entries rather than element by element.
  const parts: Range<K>[][] = [];
  let from = 0;
  for (const i of hits) {
    parts.push(old.slice(from, i));
    from = i + 1;
  }
  parts.push(old.slice(from), added.slice());
  const ranges = ([] as Range<K>[]).concat(...parts);
  let table = state.table;
  for (const w of windows.concat(added)) table = rebuildWindow(codec, table, ranges, w.start, w.end);
  return { ranges, table };
}

export function lookupV4(table: Table, x: number): number {
  const keys = table.keys;
  let lo = 0;
  let hi = keys.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (keys[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return table.labels[lo];
}

export function lookupV6(table: Table, ip: ParsedIpv6): number {
  const keys = table.keys;
  const { w0, w1, w2, w3 } = ip;
  let lo = 0;
  let hi = table.labels.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const o = mid * 4;
    const a = keys[o];
    let le: boolean;
    if (a !== w0) le = a < w0;
    else if (keys[o + 1] !== w1) le = keys[o + 1] < w1;
    else if (keys[o + 2] !== w2) le = keys[o + 2] < w2;
    else le = keys[o + 3] <= w3;
    if (le) lo = mid;
    else hi = mid - 1;
  }
  return table.labels[lo];
}
