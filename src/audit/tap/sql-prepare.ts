// Statement names of SQL PREPARE and DEALLOCATE, which the joiner follows so a Bind by that
// name is audited with the PREPARE's text.

export const DEALLOCATE = /^\s*DEALLOCATE\s+(?:PREPARE\s+)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*;?\s*$/i;
export const PREPARE = /^\s*PREPARE\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)[\s(]/i;

/** The statement name of `DEALLOCATE [PREPARE] name` or `PREPARE name ...` (folded as PostgreSQL folds it), or null. */
export function statementName(pattern: RegExp, text: string): string | null {
  const m = pattern.exec(text);
  if (!m) return null;
  const name = m[1]!;
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name.toLowerCase();
}
