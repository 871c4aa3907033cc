// The real PostgreSQL parser (libpg-query, compiled to WebAssembly). The module is loaded once,
// when this file is first imported, so parsing below is synchronous. Parse trees are the JSON form
// of PostgreSQL's raw parse nodes: {"SelectStmt": {...}} wrappers, byte offsets into the UTF-8 text.

import { loadModule, parseSync, scanSync } from 'libpg-query';

await loadModule();

/** A parse node's fields; children are reached through the helpers in nodes.ts. */
export type Fields = { readonly [field: string]: unknown };

export interface RawStatement {
  /** The statement node, e.g. {"SelectStmt": {...}}. */
  readonly stmt: Fields;
  /** Byte offset and length in the UTF-8 text; length 0 means "to the end". */
  readonly location: number;
  readonly length: number;
}

export type ParseOutcome = { readonly ok: true; readonly statements: readonly RawStatement[] } | { readonly ok: false; readonly error: string };

/** Texts parsed by libpg-query in this process: read by the unit test that counts passes. */
export const parseCounters = { parses: 0, scans: 0 };

// The statement audit and the SQL-injection detector both parse a statement their caches miss,
// one after the other: the last text's parse (and scan) is kept so the second takes it as is.
// The results are shared: callers only read them.
let lastParsed: { text: string; outcome: ParseOutcome } | null = null;
let lastScanned: { text: string; tokens: Token[] | null } | null = null;

export function parseSql(text: string): ParseOutcome {
  if (lastParsed !== null && lastParsed.text === text) return lastParsed.outcome;
  const outcome = parseOnce(text);
  lastParsed = { text, outcome };
  return outcome;
}

function parseOnce(text: string): ParseOutcome {
  if (text.trim() === '') return { ok: true, statements: [] };
  parseCounters.parses++;
  try {
    const result = parseSync(text) as { stmts?: { stmt?: Fields; stmt_location?: number; stmt_len?: number }[] };
    const statements: RawStatement[] = [];
    for (const raw of result.stmts ?? []) {
      if (raw.stmt === undefined) continue;
      statements.push({ stmt: raw.stmt, location: raw.stmt_location ?? 0, length: raw.stmt_len ?? 0 });
    }
    return { ok: true, statements };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

export interface Token {
  /** Byte offsets in the UTF-8 text. */
  readonly start: number;
  readonly end: number;
  /** Scanner token type (gram.y token number; 261 is SCONST). */
  readonly type: number;
}

/** PostgreSQL's scanner; null when it fails. Slower than parsing: used on cache misses only. */
export function scanSql(text: string): Token[] | null {
  if (lastScanned !== null && lastScanned.text === text) return lastScanned.tokens;
  parseCounters.scans++;
  let tokens: Token[] | null;
  try {
    tokens = scanSync(text).tokens.map((t) => ({ start: t.start, end: t.end, type: t.tokenType }));
  } catch {
    tokens = null;
  }
  lastScanned = { text, tokens };
  return tokens;
}
