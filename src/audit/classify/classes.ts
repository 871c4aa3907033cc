// Audit class settings as pgAudit reads pgaudit.log: a comma-separated list of classes, ALL and
// NONE, "-CLASS" to subtract; MISC also selects MISC_SET (SET statements), as in pgAudit.

import type { StatementClass } from './types.js';

export const AUDIT_CLASSES = ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC', 'MISC_SET'] as const;
export type AuditClass = (typeof AUDIT_CLASSES)[number];

/** The classes a setting selects, or an error naming the unknown token. */
export function parseClassList(setting: string): { classes: Set<AuditClass> } | { error: string } {
  const classes = new Set<AuditClass>();
  for (const raw of setting.split(',')) {
    let token = raw.trim().toUpperCase();
    if (token === '') continue;
    const subtract = token.startsWith('-');
    if (subtract) token = token.slice(1).trim();
    let selected: readonly AuditClass[];
    if (token === 'ALL') selected = AUDIT_CLASSES;
    else if (token === 'NONE') selected = [];
    else if (token === 'MISC') selected = ['MISC', 'MISC_SET'];
    else if ((AUDIT_CLASSES as readonly string[]).includes(token)) selected = [token as AuditClass];
    else return { error: `unknown audit class "${raw.trim()}"` };
    for (const c of selected) {
      if (subtract) classes.delete(c);
      else classes.add(c);
    }
  }
  return { classes };
}

/**
 * True when a statement is audited under `enabled`: one of its classes is selected. A statement
 * the parser refused (UNKNOWN) is audited whenever any class is, since its class is unknown.
 */
export function isAudited(statement: { readonly classes: readonly StatementClass[] }, enabled: ReadonlySet<string>): boolean {
  if (enabled.size === 0) return false;
  for (const c of statement.classes) if (c === 'UNKNOWN' || enabled.has(c)) return true;
  return false;
}
