// Which statements the relay may pass on unobserved (quiet), or observe only as a summary, for
// every Query of the same shape (the same text but for literal values, which classify alike):
// what StatementJoiner.quietable and StatementJoiner.summary say of the last event.
import type { Classifier, StatementInfo } from '../classify/index.js';
import { keptText } from './statement-event.js';

/** What a summarized Query's record takes from its shape (see StatementJoiner.summary). */
export interface QuerySummary {
  readonly info: StatementInfo;
  /** UTF-16 units of the Query's text before and after the statement's own. */
  readonly lead: number;
  readonly trail: number;
}

/** The statements of the last event when it was a whole Query (an array) or Parse (one). */
export type LastStatements = readonly StatementInfo[] | StatementInfo | null;

/** Only statements this accepts are recorded (JoinerOptions.include); absent: all. */
type Include = ((info: StatementInfo) => boolean) | undefined;

/** What may come before and after a summarized statement in its Query: blanks and semicolons
 * (the same in every Query of its shape, whose key keeps them byte for byte). */
const AROUND = /^[ \t\n\r\f\v;]*$/;
const PASSWORD = /password/i;

/** Command tags of statements that change nothing the joiner follows (none of them can start a copy). */
const QUIET_TAGS: ReadonlySet<string> = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'SHOW',
  'SET',
  'RESET',
  'BEGIN',
  'START TRANSACTION',
  'SAVEPOINT',
  'RELEASE',
  'EXPLAIN',
  'CALL',
  'DO',
  'LOCK TABLE',
]);

/**
 * The last event was a simple Query (or a Parse) whose every statement is left out by `include`, cannot
 * start a copy, and has a command tag after which the joiner's state is what it was (no SQL
 * PREPARE / DEALLOCATE / DISCARD, no end of a transaction): the Query and its answer can go
 * unobserved, as can any Query that differs from it only in literal values (which classify
 * alike).
 */
export function quietShape(last: LastStatements, include: Include): boolean {
  if (last === null || include === undefined) return false;
  const quiet = (i: StatementInfo) => !include(i) && QUIET_TAGS.has(i.commandTag);
  return Array.isArray(last) ? (last as readonly StatementInfo[]).every(quiet) : quiet(last as StatementInfo);
}

/**
 * The last event was a simple Query of one statement that the joiner records, whose record
 * any Query of the same shape (the same text but for literal values) gets from its own text,
 * times and command tag alone: a statement `quietShape` would allow but for its record, with
 * numbers for literals (no string: see below), its text not redacted (no redaction pattern, no
 * redacted column in it) and not cut, between blanks and semicolons only. Null otherwise.
 */
export function shapeSummary(
  query: string | null,
  last: LastStatements,
  options: { readonly include?: Include; readonly classifier: Pick<Classifier, 'redactPatterns'> },
  maxTextBytes: number,
): QuerySummary | null {
  // No string literal (no quote): a statement of the shape with a string in it could hold a
  // secret the classifier redacts from its text, which the shape cannot tell.
  if (query === null || !Array.isArray(last) || last.length !== 1 || query.includes("'") || PASSWORD.test(query)) return null;
  const info = (last as readonly StatementInfo[])[0]!;
  const { include, classifier } = options;
  if (include !== undefined && !include(info)) return null;
  if (!QUIET_TAGS.has(info.commandTag) || info.error !== undefined || classifier.redactPatterns.length > 0) return null;
  if (info.redactedText !== info.text || keptText(info, false, undefined, maxTextBytes).full !== undefined) return null;
  const lead = query.indexOf(info.text);
  if (lead < 0) return null;
  const after = lead + info.text.length;
  if (!AROUND.test(query.slice(0, lead)) || !AROUND.test(query.slice(after))) return null;
  return { info, lead, trail: query.length - after };
}
