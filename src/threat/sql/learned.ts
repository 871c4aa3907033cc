// Learned application shapes: per (application name, role) of one server, the literal-free
// statements seen while the threat policy's learning period runs. After it, a statement whose
// tokens are a learned statement's with more attached where a literal used to be (extra OR/AND
// terms, a UNION, a stacked statement, string building) or cut off by a comment right after a
// literal is an injection even when no single rule fires. Bounded per application and per server;
// persisted in the catalog (sql_learned_shapes) by the threat engine.
import { scanSql } from '../../sql/parser.js';

export interface LearnedRow {
  readonly role: string;
  readonly application: string;
  readonly fingerprint: string;
  /** The statement's tokens, literals as `?`, comments left out (JSON array). */
  readonly shape: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
}

export interface Tokens {
  readonly tokens: readonly string[];
  /** The text ends in a comment (what an injected `--` or `/*` leaves). */
  readonly trailingComment: boolean;
}

export interface LearnedLimits {
  readonly perApplication: number;
  readonly perServer: number;
}

export const DEFAULT_LEARNED_LIMITS: LearnedLimits = { perApplication: 2_000, perServer: 20_000 };

const LITERALS = new Set([260, 261, 262, 263, 264, 266]); // FCONST SCONST USCONST BCONST XCONST ICONST
const COMMENTS = new Set([275, 276]);
const ATTACH = new Set(['or', 'union', ';', '||', 'intersect', 'except', 'select']);

/** The statement's normalized tokens; null when PostgreSQL's scanner cannot read it. */
export function tokensOf(sql: string): Tokens | null {
  const scanned = scanSql(sql);
  if (!scanned) return null;
  const buf = Buffer.from(sql, 'utf8');
  const tokens: string[] = [];
  let trailingComment = false;
  for (const t of scanned) {
    if (COMMENTS.has(t.type)) {
      trailingComment = true;
      continue;
    }
    trailingComment = false;
    tokens.push(LITERALS.has(t.type) ? '?' : buf.subarray(t.start, t.end).toString('utf8').toLowerCase());
  }
  while (tokens.at(-1) === ';') tokens.pop();
  return { tokens, trailingComment };
}

interface Entry {
  readonly row: LearnedRow;
  readonly tokens: readonly string[];
}

const groupKey = (role: string, application: string) => `${role}\u0000${application}`;

export class LearnedShapes {
  private readonly groups = new Map<string, Map<string, Entry>>();
  private pending = new Map<string, LearnedRow>();
  private count = 0;

  constructor(private readonly limits: LearnedLimits = DEFAULT_LEARNED_LIMITS) {}

  get size(): number {
    return this.count;
  }

  load(rows: readonly LearnedRow[]): void {
    for (const r of rows) {
      let tokens: string[];
      try {
        tokens = JSON.parse(r.shape) as string[];
      } catch {
        continue;
      }
      if (Array.isArray(tokens)) this.put(r, tokens);
    }
  }

  /** True when shapes were learned for this (role, application). */
  knows(role: string, application: string): boolean {
    return this.groups.has(groupKey(role, application));
  }

  has(role: string, application: string, fingerprint: string): boolean {
    return this.groups.get(groupKey(role, application))?.has(fingerprint) ?? false;
  }

  /** Adds a shape seen in the learning period; false when known or over the bounds. */
  learn(role: string, application: string, fingerprint: string, tokens: readonly string[], timeMs: number): boolean {
    if (this.has(role, application, fingerprint)) return false;
    const row: LearnedRow = { role, application, fingerprint, shape: JSON.stringify(tokens), firstSeen: timeMs, lastSeen: timeMs };
    if (!this.put(row, tokens)) return false;
    this.pending.set(`${groupKey(role, application)}\u0000${fingerprint}`, row);
    return true;
  }

  /** Shapes learned since the last call, to be stored. */
  takePending(): LearnedRow[] {
    const rows = [...this.pending.values()];
    this.pending = new Map();
    return rows;
  }

  /** Puts rows that could not be stored back, so the next flush tries again. */
  returnPending(rows: readonly LearnedRow[]): void {
    for (const r of rows) this.pending.set(`${groupKey(r.role, r.application)}\u0000${r.fingerprint}`, r);
  }

  /** A learned shape of the application (and role, when given) this statement extends at a
   * literal: its fingerprint, or null. */
  extended(role: string | null, application: string | null, t: Tokens): string | null {
    if (role !== null && application !== null) {
      for (const e of this.groups.get(groupKey(role, application))?.values() ?? []) if (extends_(e.tokens, t)) return e.row.fingerprint;
      return null;
    }
    for (const [key, group] of this.groups) {
      const [r, a] = key.split('\u0000') as [string, string];
      if ((role !== null && r !== role) || (application !== null && a !== application)) continue;
      for (const e of group.values()) if (extends_(e.tokens, t)) return e.row.fingerprint;
    }
    return null;
  }

  /** Every shape learned for an application (and role), for the console and tests. */
  list(application?: string, role?: string): LearnedRow[] {
    const out: LearnedRow[] = [];
    for (const group of this.groups.values()) {
      for (const e of group.values()) {
        if ((application === undefined || e.row.application === application) && (role === undefined || e.row.role === role)) out.push(e.row);
      }
    }
    return out;
  }

  private put(row: LearnedRow, tokens: readonly string[]): boolean {
    const key = groupKey(row.role, row.application);
    let group = this.groups.get(key);
    if (group?.has(row.fingerprint)) return false;
    if (this.count >= this.limits.perServer || (group && group.size >= this.limits.perApplication)) return false;
    if (!group) {
      group = new Map();
      this.groups.set(key, group);
    }
    group.set(row.fingerprint, { row, tokens });
    this.count++;
    return true;
  }
}

/** T is the learned S with tokens attached where one of S's literals is (S = A ? B, T = A X B with
 * X holding the literal and an OR, UNION, `;`, `||`, a subquery or a function call on AND), or S
 * cut short by a comment right after a literal (S = A ? B, T = A ? -- ...). */
function extends_(s: readonly string[], t: Tokens): boolean {
  const T = t.tokens;
  if (T.length === s.length && !t.trailingComment) return false;
  let p = 0;
  const max = Math.min(s.length, T.length);
  while (p < max && s[p] === T[p]) p++;
  if (p === 0) return false;
  // Truncation: T is a prefix of S ending at a literal, followed by a comment.
  if (t.trailingComment && p === T.length && p < s.length && T[p - 1] === '?') return true;
  if (T.length <= s.length) return false;
  let q = 0;
  while (q < s.length - p && s[s.length - 1 - q] === T[T.length - 1 - q]) q++;
  // S's uncovered middle: nothing (the literal is in the prefix) or the literal itself.
  const middle = s.slice(p, s.length - q);
  if (middle.length > 1 || (middle.length === 1 && middle[0] !== '?')) return false;
  if (middle.length === 0 && s[p - 1] !== '?' && s[s.length - q] !== '?') return false;
  const x = T.slice(p, T.length - q);
  if (x.some((w) => ATTACH.has(w))) return true;
  return x.includes('and') && x.includes('(');
}
