// `pgwarden threat sql-check` input and output: one statement per input line, either a JSON
// object with a string "sql" or the line itself as SQL; one JSON object per line out, in order.
import type { SqlCheckResult } from './detector.js';

/** The statement a line holds. */
export function statementOfLine(line: string): string {
  const trimmed = line.trim();
  if (trimmed.startsWith('{')) {
    try {
      const v = JSON.parse(trimmed) as unknown;
      if (typeof v === 'object' && v !== null && typeof (v as { sql?: unknown }).sql === 'string') return (v as { sql: string }).sql;
    } catch {
      // not JSON: the line is SQL
    }
  }
  return line;
}

/** The output line for one verdict: verdict, shapes, detail, fingerprint, in this order. */
export function verdictLine(r: SqlCheckResult): string {
  return JSON.stringify({ verdict: r.verdict, shapes: [...r.shapes], detail: r.detail, fingerprint: r.fingerprint });
}
