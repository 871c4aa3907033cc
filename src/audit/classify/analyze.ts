// One parse of a query string, turned into what the classifier needs per statement. Runs on a
// cache miss only: it parses with libpg-query and also runs its scanner (token extents, to place
// redactions and to check the shape lexer). Offsets here are UTF-16 indices into the text.

import { explainAnalyze, statementClass } from './class-rules.js';
import { commandTag } from './command-tag.js';
import { fieldsOf, isObject, nodeType, some } from '../../sql/nodes.js';
import { calledFunctions, statementObjects } from './objects.js';
import { parseSql, scanSql, type Token } from '../../sql/parser.js';
import { literalValue } from './redact.js';
import { CONNINFO_PASSWORD, columnValues, holdsSecret, secretLocations } from './sensitive.js';
import type { AuditObject, StatementClass } from './types.js';

export interface StatementAnalysis {
  /** Untrimmed statement extent in the text. */
  readonly start: number;
  readonly end: number;
  readonly class: StatementClass;
  readonly classes: readonly StatementClass[];
  readonly commandTag: string;
  readonly objects: readonly AuditObject[];
  readonly redactParams: readonly number[];
  /** Token extents to replace by '<redacted>'. */
  readonly redactSpans: readonly Span[];
  /** The statement may hold a password: its text must not be cached. */
  readonly secret: boolean;
}

export interface Span {
  readonly start: number;
  readonly end: number;
}

export type TextAnalysis =
  /** `literals`: every literal token; [] when not scanned (not needed), null when the scanner failed. */
  | { readonly ok: true; readonly statements: readonly StatementAnalysis[]; readonly literals: readonly Span[] | null }
  | { readonly ok: false; readonly error: string };

/** Scanner token types (libpg-query 18) of literals: FCONST, SCONST, USCONST, BCONST, XCONST, ICONST. */
const LITERAL_TOKENS = new Set([260, 261, 262, 263, 264, 266]);

/**
 * Parses `sql`. The scanner (slower than the parser) runs only when literal positions are needed:
 * `wantLiterals`, or a statement with values to redact.
 */
export function analyzeText(sql: string, columns: ReadonlySet<string>, wantLiterals: boolean): TextAnalysis {
  const parsed = parseSql(sql);
  if (!parsed.ok) return parsed;
  const index = new Utf8Index(sql);
  const found = parsed.statements.map((raw) => ({ raw, values: columnValues(raw.stmt, columns), secrets: secretLocations(raw.stmt) }));
  const mentionsPassword = /password/i.test(sql);
  const needed = wantLiterals || mentionsPassword || found.some((f) => f.values.constants.length > 0 || f.secrets.length > 0);
  const tokens = needed ? scanSql(sql) : null;
  const literals = tokens === null ? null : tokens.filter((t) => LITERAL_TOKENS.has(t.type));
  const byStart = new Map<number, Token>();
  for (const t of literals ?? []) byStart.set(t.start, t);
  const statements = found.map(({ raw, values, secrets }): StatementAnalysis => {
    const stmt = raw.stmt;
    const cls = statementClass(stmt);
    const start = index.char(raw.location);
    const end = raw.length > 0 ? index.char(raw.location + raw.length) : sql.length;
    let spans: Span[] = [];
    for (const at of values.constants) {
      const token = literalAt(literals, byStart, at, sql, index);
      if (token !== undefined) spans.push(charSpan(token, index));
    }
    for (const at of secrets) {
      const token = literals?.find((t) => t.start >= at);
      if (token !== undefined) spans.push(charSpan(token, index));
    }
    let conninfo = false;
    if (mentionsPassword) {
      for (const t of literals ?? []) {
        const span = charSpan(t, index);
        if (span.start < start || span.end > end || !CONNINFO_PASSWORD.test(literalValue(sql.slice(span.start, span.end)))) continue;
        spans.push(span);
        conninfo = true;
      }
    }
    // Without the scanner nothing can be placed: redact the whole statement.
    if (literals === null && (values.constants.length > 0 || secrets.length > 0)) spans = [{ start, end }];
    return {
      start,
      end,
      class: cls,
      classes: allClasses(stmt, cls),
      commandTag: commandTag(stmt),
      objects: statementObjects(stmt),
      redactParams: [...new Set(values.params)].sort((a, b) => a - b),
      redactSpans: spans.sort((a, b) => a.start - b.start),
      secret: conninfo || holdsSecret(stmt),
    };
  });
  const spans = literals === null ? (needed ? null : []) : literals.map((t) => charSpan(t, index));
  return { ok: true, statements, literals: spans };
}

/** The literal token an A_Const location points at; "-5" is located at its minus sign. */
function literalAt(literals: readonly Token[] | null, byStart: ReadonlyMap<number, Token>, at: number, sql: string, index: Utf8Index): Token | undefined {
  if (literals === null) return undefined;
  const exact = byStart.get(at);
  if (exact !== undefined) return exact;
  if (sql[index.char(at)] === '-') return literals.find((t) => t.start > at);
  return undefined;
}

function charSpan(token: Token, index: Utf8Index): Span {
  return { start: index.char(token.start), end: index.char(token.end) };
}

const EXECUTING = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'CallStmt', 'CreateTableAsStmt', 'DeclareCursorStmt']);
const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/** `cls` plus the classes of what pgAudit logs while the statement runs. */
function allClasses(stmt: unknown, cls: StatementClass): StatementClass[] {
  const out = new Set<StatementClass>([cls]);
  const type = nodeType(stmt) ?? '';
  const f = fieldsOf(stmt);
  const explained = type === 'ExplainStmt' && explainAnalyze(f['options']);
  const executes = EXECUTING.has(type) || (type === 'CopyStmt' && isObject(f['query'])) || explained;
  if (executes && calledFunctions(stmt).length > 0) out.add('FUNCTION');
  if (type === 'CreateTableAsStmt' || (type === 'SelectStmt' && isObject(f['intoClause']))) out.add('READ');
  if (explained) for (const c of allClasses(f['query'], statementClass(f['query']))) out.add(c);
  if (!DML.has(type) && executes && some(stmt, (t) => DML.has(t))) out.add('WRITE');
  return [...out];
}

/** Maps UTF-8 byte offsets (the parser's) to UTF-16 indices (JavaScript's). */
class Utf8Index {
  private readonly map: Int32Array | null;

  constructor(sql: string) {
    const bytes = Buffer.byteLength(sql, 'utf8');
    if (bytes === sql.length) {
      this.map = null;
      return;
    }
    this.map = new Int32Array(bytes + 1);
    let b = 0;
    for (let i = 0; i < sql.length; i++) {
      const c = sql.codePointAt(i)!;
      const width = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      for (let k = 0; k < width; k++) this.map[b + k] = i;
      b += width;
      if (c >= 0x10000) i++; // surrogate pair: one code point, two UTF-16 units
    }
    this.map[bytes] = sql.length;
  }

  char(byte: number): number {
    if (this.map === null) return byte;
    return this.map[Math.max(0, Math.min(byte, this.map.length - 1))]!;
  }
}
