// What statement classification produces. Classes are pgAudit's session classes (pgaudit.log);
// 'UNKNOWN' marks a text the PostgreSQL parser refused (or one too long to parse).

export type StatementClass = 'READ' | 'WRITE' | 'FUNCTION' | 'ROLE' | 'DDL' | 'MISC' | 'MISC_SET' | 'UNKNOWN';

export type ObjectKind = 'relation' | 'function' | 'role' | 'schema' | 'database' | 'other';

/** An object a statement names: schema-qualified only when the statement qualifies it. */
export interface AuditObject {
  readonly kind: ObjectKind;
  readonly name: string;
}

export interface StatementInfo {
  /** pgAudit's session class of the statement itself. */
  readonly class: StatementClass;
  /**
   * Every class under which pgAudit would log something for this statement: `class`, plus
   * FUNCTION when it calls a function outside pg_catalog, READ for the query inside CREATE TABLE
   * AS / SELECT INTO / EXPLAIN ANALYZE, WRITE for a data-modifying CTE or RETURNING query under
   * a read. Filter on this list, not on `class`.
   */
  readonly classes: readonly StatementClass[];
  /** PostgreSQL's command tag without row counts: "SELECT", "CREATE TABLE", "GRANT". */
  readonly commandTag: string;
  readonly objects: readonly AuditObject[];
  /** The statement's own text (trimmed slice of the query string). May hold secrets: never log it. */
  readonly text: string;
  /** `text` with passwords (always) and operator-chosen literals replaced by '<redacted>'. */
  readonly redactedText: string;
  /** Parameter numbers ($n, 1-based) whose bound values must be redacted (redactColumns). */
  readonly redactParams: readonly number[];
  /** The parser's message when class is 'UNKNOWN'. */
  readonly error?: string;
}

export interface ClassifyOptions {
  /** Column names whose literal values (and bound $n values) are redacted, case-insensitive. */
  readonly redactColumns?: readonly string[];
  /** Literals (and bound values) matching any of these are redacted. */
  readonly redactPatterns?: readonly RegExp[];
  /** With either bound, the classifier keeps a cache of its own: distinct statement shapes kept
   * (default 5000). Without, it shares the process's one shape cache (sql/shape-cache.ts). */
  readonly maxCacheEntries?: number;
  /** Bound of a cache of its own: approximate bytes kept (default 8 MiB). */
  readonly maxCacheBytes?: number;
  /** Texts longer than this (UTF-16 units) are not parsed: one UNKNOWN entry (default 1 MiB). */
  readonly maxParseLength?: number;
  /** Share cache entries between texts that differ only in literals (default true). */
  readonly shapes?: boolean;
}

export const REDACTED = "'<redacted>'";
