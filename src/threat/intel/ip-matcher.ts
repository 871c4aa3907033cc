// Many lists of address blocks compiled into one lookup table per family (the firewall's
// breakpoint tables): O(log n) per match. Where blocks overlap, the most specific one is
// reported (longest prefix), then the earlier list, then the earlier line.

import { parseIp, type ParsedIpv6 } from '../../network/address.js';
import { lookupV4, lookupV6, v4Codec, v6Codec, type Codec, type Table } from '../../network/breakpoint-table.js';
import type { Ipv6Words } from '../../network/ip-text.js';
import { sweepRanges, type PrioritizedRange } from '../../network/interval-sweep.js';
import type { IpListEntry, ParsedIpList } from './ip-list.js';

export interface IpListMatch {
  readonly list: string;
  readonly entry: string;
}

export interface IpMatcher {
  match(address: string): IpListMatch | null;
  /** Entries compiled in, over all lists. */
  readonly size: number;
}

export function compileIpLists(lists: readonly ParsedIpList[]): IpMatcher {
  const hits: IpListMatch[] = [];
  const v4: { e: IpListEntry; list: number; id: number }[] = [];
  const v6: { e: IpListEntry; list: number; id: number }[] = [];
  lists.forEach((l, list) => {
    for (const e of l.entries) {
      const id = hits.push({ list: l.name, entry: e.text }) - 1;
      (e.cidr.family === 4 ? v4 : v6).push({ e, list, id });
    }
  });
  const byPriority = (a: (typeof v4)[number], b: (typeof v4)[number]) =>
    b.e.cidr.prefixLength - a.e.cidr.prefixLength || a.list - b.list || a.e.line - b.e.line;
  v4.sort(byPriority);
  v6.sort(byPriority);
  const t4 = table(v4Codec, v4.map((r) => ({ start: (r.e.cidr.first as { value: number }).value, end: (r.e.cidr.last as { value: number }).value, id: r.id })));
  const t6 = table(v6Codec, v6.map((r) => ({ start: r.e.cidr.first as Ipv6Words, end: r.e.cidr.last as Ipv6Words, id: r.id })));
  return {
    size: hits.length,
    match(address: string): IpListMatch | null {
      if (typeof address !== 'string' || address.length > 64) return null;
      const zone = address.indexOf('%');
      const ip = parseIp(zone > 0 ? address.slice(0, zone) : address);
      if (ip === null) return null;
      const id = ip.family === 4 ? (t4 ? lookupV4(t4, ip.value) : -1) : t6 ? lookupV6(t6, ip as ParsedIpv6) : -1;
      return id < 0 ? null : hits[id]!;
    },
  };
}

function table<K>(codec: Codec<K>, ranges: PrioritizedRange<K>[]): Table | null {
  if (ranges.length === 0) return null;
  const bp = sweepRanges(ranges, codec, codec.min, codec.max);
  const keys = new Uint32Array(bp.keys.length * codec.stride);
  for (let i = 0; i < bp.keys.length; i++) codec.write(keys, i, bp.keys[i]!);
  return { keys, labels: Int32Array.from(bp.labels) };
}
