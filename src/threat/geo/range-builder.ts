// Collects ranges row by row into growable typed arrays and keeps them sorted and disjoint:
// a row that starts inside the previous one wins the overlap (the previous row is cut short,
// and resumes after the row when it reached further); a row that starts at or before the
// previous start, or ends before it starts, is skipped and counted.

import type { RangeColumns } from './asn-table.js';

export class RangeBuilder {
  /** Scratch bounds of the next row, written by the caller before push(). */
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  clipped = 0;
  skipped = 0;
  private n = 0;
  private starts: Uint32Array;
  private ends: Uint32Array;
  private asns: Uint32Array;
  private orgs: Uint32Array;

  constructor(readonly stride: 1 | 4, capacity = 1024) {
    this.start = new Uint32Array(stride);
    this.end = new Uint32Array(stride);
    const cap = Math.max(16, capacity);
    this.starts = new Uint32Array(cap * stride);
    this.ends = new Uint32Array(cap * stride);
    this.asns = new Uint32Array(cap);
    this.orgs = new Uint32Array(cap);
  }

  /** Adds the row [this.start, this.end]; false when it was skipped. */
  push(asn: number, org: number): boolean {
    const k = this.stride;
    if (cmp(this.start, 0, this.end, 0, k) > 0) return this.skip();
    const last = this.n - 1;
    if (last >= 0) {
      if (cmp(this.start, 0, this.starts, last * k, k) <= 0) return this.skip();
      if (cmp(this.start, 0, this.ends, last * k, k) <= 0) {
        this.clipped++;
        const tail = cmp(this.ends, last * k, this.end, 0, k) > 0 ? this.ends.slice(last * k, last * k + k) : null;
        const tailAsn = this.asns[last]!;
        const tailOrg = this.orgs[last]!;
        this.ends.set(this.start, last * k);
        step(this.ends, last * k, k, -1);
        this.append(this.start, this.end, asn, org);
        if (tail) {
          const tailStart = this.end.slice();
          step(tailStart, 0, k, +1);
          this.append(tailStart, tail, tailAsn, tailOrg);
        }
        return true;
      }
    }
    this.append(this.start, this.end, asn, org);
    return true;
  }

  finish(): RangeColumns {
    const { n, stride } = this;
    return {
      stride,
      length: n,
      starts: this.starts.slice(0, n * stride),
      ends: this.ends.slice(0, n * stride),
      asns: this.asns.slice(0, n),
      orgs: this.orgs.slice(0, n),
    };
  }

  private skip(): false {
    this.skipped++;
    return false;
  }

  private append(start: Uint32Array, end: Uint32Array, asn: number, org: number): void {
    if (this.n === this.asns.length) this.grow();
    const k = this.stride;
    this.starts.set(start, this.n * k);
    this.ends.set(end, this.n * k);
    this.asns[this.n] = asn;
    this.orgs[this.n] = org;
    this.n++;
  }

  private grow(): void {
    const cap = this.asns.length * 2;
    const more = (a: Uint32Array, size: number) => {
      const b = new Uint32Array(size);
      b.set(a);
      return b;
    };
    this.starts = more(this.starts, cap * this.stride);
    this.ends = more(this.ends, cap * this.stride);
    this.asns = more(this.asns, cap);
    this.orgs = more(this.orgs, cap);
  }
}

function cmp(a: Uint32Array, ao: number, b: Uint32Array, bo: number, k: number): number {
  for (let i = 0; i < k; i++) {
    const d = a[ao + i]! - b[bo + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Adds +1 or −1 to the big-endian number in a[o..o+k) (callers never wrap around). */
function step(a: Uint32Array, o: number, k: number, by: 1 | -1): void {
  for (let i = o + k - 1; i >= o; i--) {
    const before = a[i]!;
    a[i] = before + by; // Uint32Array wraps modulo 2^32
    if ((by === 1 && before !== 0xffffffff) || (by === -1 && before !== 0)) return;
  }
}
