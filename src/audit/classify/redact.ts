// Building redacted statement text: literal token extents are replaced by '<redacted>'.

import { REDACTED } from './types.js';

export interface LiteralSpans {
  readonly starts: readonly number[];
  readonly ends: readonly number[];
}

/**
 * text[start, end) trimmed, with literal k (for k in [from, to)) replaced when `redact(k)` says so.
 * Returns the plain trimmed slice (no copy beyond the slice) when nothing is replaced.
 */
export function redactSlice(sql: string, start: number, end: number, spans: LiteralSpans, from: number, to: number, redact: (k: number) => boolean): string {
  let out: string | null = null;
  let pos = start;
  for (let k = from; k < to; k++) {
    if (!redact(k)) continue;
    out = (out ?? '') + sql.slice(pos, spans.starts[k]) + REDACTED;
    pos = spans.ends[k]!;
  }
  if (out === null) return sql.slice(start, end).trim();
  return (out + sql.slice(pos, end)).trim();
}

/** The value of a literal token as written: quotes and prefixes removed, '' undoubled. */
export function literalValue(token: string): string {
  const quote = token.indexOf("'");
  if (quote >= 0 && quote <= 2 && token.endsWith("'") && token.length > quote + 1) {
    return token.slice(quote + 1, -1).replaceAll("''", "'");
  }
  const dollar = /^(\$[^$]*\$)([\s\S]*)\1$/.exec(token);
  if (dollar !== null) return dollar[2]!;
  return token;
}

export function matchesAny(value: string, patterns: readonly RegExp[]): boolean {
  for (const pattern of patterns) if (value.search(pattern) >= 0) return true;
  return false;
}

/**
 * For text the parser refused: pgAudit's rule for role statements (everything after the word
 * "password" is dropped), applied to any such text since its meaning is unknown.
 */
export function truncateAfterPassword(text: string): string {
  const at = text.search(/password/i);
  return at < 0 ? text : `${text.slice(0, at + 'password'.length)} ${REDACTED}`;
}
