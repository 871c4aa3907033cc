// Reads the @ip-location-db/asn CSV files into an AsnTable, streaming: the files (~33 MB) are
// read in 1 MiB chunks and parsed byte by byte, so no per-line strings are made except for
// IPv6 bounds and organization names, and each distinct organization is kept once.
//
// Files: asn-ipv4-num.csv ("start,end,asn,organization" with integer bounds) and asn-ipv6.csv
// (the same with IPv6 text bounds). Malformed rows are skipped and counted, never fatal; a
// missing or unreadable file, or one without a single usable row, is a GeoDataError.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseIpv6Words } from '../../network/ip-text.js';
import { NO_ORGANIZATION, type AsnTable } from './asn-table.js';
import { GeoDataError } from './errors.js';
import { RangeBuilder } from './range-builder.js';

export const ASN_IPV4_FILE = 'asn-ipv4-num.csv';
export const ASN_IPV6_FILE = 'asn-ipv6.csv';

export interface AsnLoadStats {
  readonly ipv4Ranges: number;
  readonly ipv6Ranges: number;
  readonly organizations: number;
  /** Rows that started inside the previous row (the later row wins the overlap). */
  readonly overlapsClipped: number;
  /** Malformed or out-of-order rows, with the first few line numbers per file. */
  readonly rowsSkipped: number;
  readonly skippedLines: readonly string[];
  readonly loadMs: number;
}

const MAX_SKIPPED_LINES_KEPT = 10;

export async function loadAsnTable(dir: string): Promise<{ table: AsnTable; stats: AsnLoadStats }> {
  const t0 = performance.now();
  const orgs = new Organizations();
  const skippedLines: string[] = [];
  const v4File = path.join(dir, ASN_IPV4_FILE);
  const v6File = path.join(dir, ASN_IPV6_FILE);
  const v4 = new RangeBuilder(1, Math.ceil((await sizeOf(v4File)) / 40));
  const v6 = new RangeBuilder(4, Math.ceil((await sizeOf(v6File)) / 60));
  let bad = 0;
  const note = (file: string, line: number) => {
    bad++;
    if (skippedLines.length < MAX_SKIPPED_LINES_KEPT) skippedLines.push(`${path.basename(file)}:${line}`);
  };

  await eachLine(v4File, (buf, s, e, line) => {
    const c1 = buf.indexOf(44, s);
    const c2 = c1 < 0 || c1 >= e ? -1 : buf.indexOf(44, c1 + 1);
    const c3 = c2 < 0 || c2 >= e ? -1 : buf.indexOf(44, c2 + 1);
    if (c3 < 0 || c3 >= e) return note(v4File, line);
    const start = decimal(buf, s, c1);
    const end = decimal(buf, c1 + 1, c2);
    const asn = decimal(buf, c2 + 1, c3);
    if (start < 0 || end < 0 || asn < 0) return note(v4File, line);
    v4.start[0] = start;
    v4.end[0] = end;
    if (!v4.push(asn, orgs.intern(buf, c3 + 1, e))) note(v4File, line);
  });
  await eachLine(v6File, (buf, s, e, line) => {
    const c1 = buf.indexOf(44, s);
    const c2 = c1 < 0 || c1 >= e ? -1 : buf.indexOf(44, c1 + 1);
    const c3 = c2 < 0 || c2 >= e ? -1 : buf.indexOf(44, c2 + 1);
    if (c3 < 0 || c3 >= e) return note(v6File, line);
    const start = parseIpv6Words(buf.toString('latin1', s, c1));
    const end = parseIpv6Words(buf.toString('latin1', c1 + 1, c2));
    const asn = decimal(buf, c2 + 1, c3);
    if (start === null || end === null || asn < 0) return note(v6File, line);
    v6.start[0] = start.w0;
    v6.start[1] = start.w1;
    v6.start[2] = start.w2;
    v6.start[3] = start.w3;
    v6.end[0] = end.w0;
    v6.end[1] = end.w1;
    v6.end[2] = end.w2;
    v6.end[3] = end.w3;
    if (!v6.push(asn, orgs.intern(buf, c3 + 1, e))) note(v6File, line);
  });

  const table: AsnTable = { v4: v4.finish(), v6: v6.finish(), organizations: orgs.names };
  if (table.v4.length === 0) throw new GeoDataError(v4File, 'it has no usable rows ("start,end,asn,organization")');
  if (table.v6.length === 0) throw new GeoDataError(v6File, 'it has no usable rows ("start,end,asn,organization")');
  return {
    table,
    stats: {
      ipv4Ranges: table.v4.length,
      ipv6Ranges: table.v6.length,
      organizations: orgs.names.length,
      overlapsClipped: v4.clipped + v6.clipped,
      rowsSkipped: bad,
      skippedLines,
      loadMs: Math.round(performance.now() - t0),
    },
  };
}

async function sizeOf(file: string): Promise<number> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new GeoDataError(file, 'it is not a regular file');
    return s.size;
  } catch (err) {
    if (err instanceof GeoDataError) throw err;
    throw new GeoDataError(file, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Calls back with each line's bytes [s, e) (without "\r\n" / "\n") and its 1-based number. */
async function eachLine(file: string, onLine: (buf: Buffer, s: number, e: number, line: number) => void): Promise<void> {
  let carry: Buffer | null = null;
  let line = 0;
  const emit = (buf: Buffer, s: number, e: number) => {
    line++;
    if (e > s && buf[e - 1] === 13) e--;
    if (e > s) onLine(buf, s, e, line);
  };
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      const buf: Buffer = carry ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      let pos = 0;
      for (let nl = buf.indexOf(10, pos); nl >= 0; nl = buf.indexOf(10, pos)) {
        emit(buf, pos, nl);
        pos = nl + 1;
      }
      carry = pos < buf.length ? buf.subarray(pos) : null;
      if (carry && carry.length > 1 << 16) throw new GeoDataError(file, `line ${line + 1} is longer than 64 KiB`);
    }
  } catch (err) {
    if (err instanceof GeoDataError) throw err;
    throw new GeoDataError(file, `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (carry) emit(carry, 0, carry.length);
}

/** Unsigned decimal in buf[s, e) up to 2^32 − 1, or -1. */
function decimal(buf: Buffer, s: number, e: number): number {
  if (e <= s || e - s > 10) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v > 0xffffffff ? -1 : v;
}

/** Organization names stored once; consecutive rows of the same organization cost one compare. */
class Organizations {
  readonly names: string[] = [];
  private readonly index = new Map<string, number>();
  private last: Buffer = Buffer.alloc(0);
  private lastStart = 0;
  private lastEnd = 0;
  private lastIndex = NO_ORGANIZATION;

  intern(buf: Buffer, s: number, e: number): number {
    if (e - s === this.lastEnd - this.lastStart && buf.compare(this.last, this.lastStart, this.lastEnd, s, e) === 0) return this.lastIndex;
    let name = buf.toString('utf8', s, e);
    if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) name = name.slice(1, -1).replaceAll('""', '"');
    name = name.trim();
    let i = NO_ORGANIZATION;
    if (name !== '') {
      i = this.index.get(name) ?? NO_ORGANIZATION;
      if (i === NO_ORGANIZATION) {
        i = this.names.length;
        this.names.push(name);
        this.index.set(name, i);
      }
    }
    this.last = buf; // the chunk stays referenced only until the next distinct name
    this.lastStart = s;
    this.lastEnd = e;
    this.lastIndex = i;
    return i;
  }
}
