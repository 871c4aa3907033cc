// What the principal and location detectors have learned per server: when each principal, and
// each (principal, country) and (principal, network) pair, was last seen. Kept in memory for
// the hot path; `dirty()` hands the changes to the catalog writer (write-behind, at most one
// write per key per hour unless it is new).

export type BaselineKind = 'principal' | 'country' | 'asn';

export interface BaselineRow {
  readonly server: string;
  readonly kind: BaselineKind;
  readonly key: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
}

const WRITE_EVERY_MS = 3600_000;

export class Baselines {
  private readonly rows = new Map<string, { firstSeen: number; lastSeen: number; written: number }>();
  private readonly changed = new Set<string>();

  static keyOf(server: string, kind: BaselineKind, key: string): string {
    return `${server}\u0000${kind}\u0000${key}`;
  }

  load(rows: Iterable<BaselineRow>): void {
    for (const r of rows) this.rows.set(Baselines.keyOf(r.server, r.kind, r.key), { firstSeen: r.firstSeen, lastSeen: r.lastSeen, written: r.lastSeen });
  }

  /** Last time seen (ms), or undefined for never. */
  lastSeen(server: string, kind: BaselineKind, key: string): number | undefined {
    return this.rows.get(Baselines.keyOf(server, kind, key))?.lastSeen;
  }

  /** How many keys of a kind the server has learned (e.g. countries of a principal). */
  touch(server: string, kind: BaselineKind, key: string, nowMs: number): void {
    const k = Baselines.keyOf(server, kind, key);
    const row = this.rows.get(k);
    if (!row) {
      this.rows.set(k, { firstSeen: nowMs, lastSeen: nowMs, written: 0 });
      this.changed.add(k);
      return;
    }
    row.lastSeen = nowMs;
    if (nowMs - row.written >= WRITE_EVERY_MS) this.changed.add(k);
  }

  forgetServer(server: string): void {
    for (const k of [...this.rows.keys()]) if (k.startsWith(`${server}\u0000`)) this.rows.delete(k);
  }

  /** Rows changed since the last call, marked as written. */
  dirty(): BaselineRow[] {
    const out: BaselineRow[] = [];
    for (const k of this.changed) {
      const row = this.rows.get(k);
      if (!row) continue;
      // The key itself may hold the separator (principal and country): split at the first two.
      const a = k.indexOf('\u0000');
      const b = k.indexOf('\u0000', a + 1);
      const server = k.slice(0, a);
      const kind = k.slice(a + 1, b) as BaselineKind;
      const key = k.slice(b + 1);
      row.written = row.lastSeen;
      out.push({ server, kind, key, firstSeen: row.firstSeen, lastSeen: row.lastSeen });
    }
    this.changed.clear();
    return out;
  }
}
