// The server's IP firewall as a lookup table: which rule (if any) admits an address.
//
// Rules are inclusive [start, end] ranges that may overlap. They are flattened into sorted,
// disjoint pieces, each labelled with the rule that "explains" it: when several rules cover an
// address, the one whose name comes first in ordinal (UTF-16 code unit) order. The pieces live
// in typed arrays, IPv4 and IPv6 apart, and a lookup is one binary search: O(log n).
//
// An index is immutable: update() returns a new one and recomputes only the address windows
// the changed rules touch (O(n) copying, no sorting of the whole rule set). The one thing
// versions share is an append-only list of names, indexed by ids an older version never sees
// change. Build cost: O(n log n); lookup: O(log n), no allocation for a ParsedIp.

import { compareIp, parseIp, validateIpRange, type ParsedIp, type ParsedIpv4, type ParsedIpv6 } from './address.js';
import { applyChange, fullBuild, lookupV4, lookupV6, v4Codec, v6Codec, type FamilyState, type Range } from './breakpoint-table.js';
import type { Ipv6Words } from './ip-text.js';

export interface FirewallRule {
  readonly name: string;
  readonly startIpAddress: string;
  readonly endIpAddress: string;
}

export interface FirewallChange {
  /** Rules to delete, by name (unknown names are ignored). */
  readonly remove?: readonly string[];
  /** Rules to add, or to replace when one with the same name exists. */
  readonly upsert?: readonly FirewallRule[];
}

export interface FirewallIndex {
  /** Name of the first rule (by name order) covering ip, or null. Invalid text matches nothing. */
  match(ip: ParsedIp | string): string | null;
  update(change: FirewallChange): FirewallIndex;
  readonly ruleCount: number;
  /** Number of disjoint labelled pieces (both families), for metrics. */
  readonly pieceCount: number;
}

/** Builds an index. Throws TypeError on an invalid range or a duplicate name. */
export function buildFirewallIndex(rules: readonly FirewallRule[]): FirewallIndex {
  const names: string[] = [];
  const v4: Range<number>[] = [];
  const v6: Range<Ipv6Words>[] = [];
  const seen = new Set<string>();
  for (const rule of rules) {
    if (seen.has(rule.name)) throw new TypeError(`duplicate firewall rule name "${rule.name}"`);
    seen.add(rule.name);
    addRange(rule, names, v4, v6);
  }
  return new Index(names, fullBuild(v4, v4Codec), fullBuild(v6, v6Codec));
}

function addRange(rule: FirewallRule, names: string[], v4: Range<number>[], v6: Range<Ipv6Words>[]): void {
  const start = parseIp(rule.startIpAddress);
  const end = parseIp(rule.endIpAddress);
  if (start === null || end === null || start.family !== end.family || compareIp(start, end) > 0) {
    const problem = validateIpRange(rule.startIpAddress, rule.endIpAddress);
    throw new TypeError(`firewall rule "${rule.name}": ${problem}`);
  }
  const id = names.length;
  names.push(rule.name);
  if (start.family === 4) v4.push({ start: start.value, end: (end as ParsedIpv4).value, id, name: rule.name });
  else v6.push({ start, end: end as ParsedIpv6, id, name: rule.name });
}

class Index implements FirewallIndex {
  constructor(
    /** Rule names by id. Append-only and shared between an index and its updates. */
    private readonly names: string[],
    private readonly v4: FamilyState<number>,
    private readonly v6: FamilyState<Ipv6Words>,
  ) {}

  get ruleCount(): number {
    return this.v4.ranges.length + this.v6.ranges.length;
  }

  get pieceCount(): number {
    return this.v4.table.labels.length + this.v6.table.labels.length;
  }

  match(ip: ParsedIp | string): string | null {
    const address = typeof ip === 'string' ? parseIp(ip) : ip;
    if (address === null) return null;
    const label = address.family === 4 ? lookupV4(this.v4.table, address.value) : lookupV6(this.v6.table, address);
    return label < 0 ? null : this.names[label];
  }

  update(change: FirewallChange): FirewallIndex {
    const upserts = change.upsert ?? [];
    const removed = new Set(change.remove ?? []);
    for (const rule of upserts) {
      const problem = validateIpRange(rule.startIpAddress, rule.endIpAddress);
      if (problem !== null) throw new TypeError(`firewall rule "${rule.name}": ${problem}`);
    }
    const seen = new Set<string>();
    for (const rule of upserts) {
      if (seen.has(rule.name)) throw new TypeError(`duplicate firewall rule name "${rule.name}"`);
      seen.add(rule.name);
      removed.add(rule.name);
    }
    const names = this.names;
    const dead = names.length - this.ruleCount;
    if (dead + upserts.length > this.ruleCount + 1024) return this.compact(removed, upserts);
    const v4Added: Range<number>[] = [];
    const v6Added: Range<Ipv6Words>[] = [];
    for (const rule of upserts) addRange(rule, names, v4Added, v6Added);
    return new Index(names, applyChange(v4Codec, this.v4, removed, v4Added), applyChange(v6Codec, this.v6, removed, v6Added));
  }

  /** Ids are never reused; when dead names pile up, build afresh with dense ids. */
  private compact(removed: ReadonlySet<string>, upserts: readonly FirewallRule[]): FirewallIndex {
    const names: string[] = [];
    const v4: Range<number>[] = [];
    const v6: Range<Ipv6Words>[] = [];
    for (const r of this.v4.ranges) if (!removed.has(r.name)) v4.push({ ...r, id: names.push(r.name) - 1 });
    for (const r of this.v6.ranges) if (!removed.has(r.name)) v6.push({ ...r, id: names.push(r.name) - 1 });
    for (const rule of upserts) addRange(rule, names, v4, v6);
    return new Index(names, fullBuild(v4, v4Codec), fullBuild(v6, v6Codec));
  }
}
