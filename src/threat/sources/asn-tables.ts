// The ASN tables of @ip-location-db/asn (CSV: start,end,asn,organization; bounds as decimal
// integers) in sorted typed arrays: IPv4 one word per bound, IPv6 four (most significant first).
// Parsed in one pass over the file's text, in the loader thread (asn-worker.ts) when it starts,
// so that the gateway's event loop never spends the second this takes.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** Sorted, disjoint ranges in typed arrays (no per-range heap objects for the collector to mark). */
export interface AsnTable {
  readonly words: 1 | 4;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
  readonly asns: Uint32Array;
  readonly orgs: Uint32Array;
}

export interface AsnTables {
  readonly v4: AsnTable;
  readonly v6: AsnTable;
  /** Organization names, indexed by the tables' `orgs`. */
  readonly orgNames: string[];
}

const require = createRequire(import.meta.url);

/** Where the shipped CSV files are. */
export function asnDirectory(): string {
  return path.dirname(require.resolve('@ip-location-db/asn/package.json'));
}

/** Both tables from the package's files (blocking: call it off the event loop). */
export function readAsnTables(dir: string = asnDirectory()): AsnTables {
  return parseAsnTables(readFileSync(path.join(dir, V4_FILE), 'utf8'), readFileSync(path.join(dir, V6_FILE), 'utf8'));
}

export const V4_FILE = 'asn-ipv4-num.csv';
export const V6_FILE = 'asn-ipv6-num.csv';

/** Both tables from the files' texts, sharing one list of organization names. */
export function parseAsnTables(v4Text: string, v6Text: string): AsnTables {
  const orgNames: string[] = [];
  const orgIndex = new Map<string, number>();
  const org = (name: string) => {
    let i = orgIndex.get(name);
    if (i === undefined) {
      i = orgNames.length;
      orgNames.push(name);
      orgIndex.set(name, i);
    }
    return i;
  };
  return { v4: parseAsnCsv(v4Text, 1, org), v6: parseAsnCsv(v6Text, 4, org), orgNames };
}

/** One table from its CSV text; lines that are not `start,end,asn,name` are skipped. */
function parseAsnCsv(text: string, words: 1 | 4, org: (name: string) => number): AsnTable {
  const starts: number[] = [];
  const ends: number[] = [];
  const asns: number[] = [];
  const orgs: number[] = [];
  const push = (out: number[], digits: string) => {
    if (words === 1) out.push(Number(digits));
    else {
      const v = BigInt(digits);
      for (let shift = 96n; shift >= 0n; shift -= 32n) out.push(Number((v >> shift) & 0xffffffffn));
    }
  };
  let at = 0;
  while (at < text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const lineEnd = end > at && text.charCodeAt(end - 1) === 13 ? end - 1 : end;
    const a = text.indexOf(',', at);
    const b = a < 0 ? -1 : text.indexOf(',', a + 1);
    const c = b < 0 ? -1 : text.indexOf(',', b + 1);
    if (c >= 0 && c < lineEnd) {
      let name = text.slice(c + 1, lineEnd);
      if (name.startsWith('"')) name = name.slice(1, -1).replace(/""/g, '"');
      push(starts, text.slice(at, a));
      push(ends, text.slice(a + 1, b));
      asns.push(Number(text.slice(b + 1, c)));
      orgs.push(org(name));
    }
    at = end + 1;
  }
  return { words, starts: Uint32Array.from(starts), ends: Uint32Array.from(ends), asns: Uint32Array.from(asns), orgs: Uint32Array.from(orgs) };
}
