// A server's statement audit settings (SPEC.md §2 auditSettings): the statement classes the
// gateway records, parameters, redaction and retention. Declared here, in the audit domain; the
// catalog stores them (catalog/audit-settings-repo.ts) and the engine writes the pgAudit part
// into each server's configuration (engine/server-libraries.ts PgAuditSettings).
import { AUDIT_CLASSES, type AuditClass } from './classify/classes.js';

export { AUDIT_CLASSES, type AuditClass };

export interface AuditSettings {
  readonly classes: readonly AuditClass[];
  readonly logParameters: boolean;
  /** Column names or regular expressions whose values are redacted in logged statements and parameters. */
  readonly redact: readonly string[];
  readonly retentionDays: number;
}

/** A server without stored settings: ROLE and DDL statements, no parameters, 90 days. */
export const DEFAULT_AUDIT_SETTINGS: AuditSettings = { classes: ['ROLE', 'DDL'], logParameters: false, redact: [], retentionDays: 90 };
