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

export type ParseOutcome =
  | { readonly ok: true; readonly statements: readonly RawStatement[] }
  | { readonly ok: false; readonly error: string };

export function parseSql(text: string): ParseOutcome {
  if (text.trim() === '') return { ok: true, statements: [] };
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
  try {
    return scanSync(text).tokens.map((t) => ({ start: t.start, end: t.end, type: t.tokenType }));
  } catch {
    return null;
  }
}
