// Statement classification for the audit log: pgAudit classes, command tags, objects, redaction.

export { Classifier, classifyStatements, type ClassifierStats } from './classifier.js';
export { AUDIT_CLASSES, isAudited, parseClassList, type AuditClass } from './classes.js';
export { REDACTED, type AuditObject, type ClassifyOptions, type ObjectKind, type StatementClass, type StatementInfo } from './types.js';
