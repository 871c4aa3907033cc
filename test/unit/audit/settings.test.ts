// Audit settings live in the audit domain; the engine, below audit/, declares only the pgAudit
// part it needs, with its own copy of the default classes: this keeps the two equal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUDIT_CLASSES, DEFAULT_AUDIT_SETTINGS } from '../../../src/audit/settings.js';
import { AUDIT_CLASSES as CLASSIFIER_CLASSES } from '../../../src/audit/classify/index.js';
import { DEFAULT_PGAUDIT_SETTINGS } from '../../../src/engine/server-libraries.js';

describe('audit settings', () => {
  it('the engine writes the default classes of the audit settings into pgaudit.log', () => {
    assert.deepEqual([...DEFAULT_PGAUDIT_SETTINGS.classes], [...DEFAULT_AUDIT_SETTINGS.classes]);
    assert.deepEqual(DEFAULT_AUDIT_SETTINGS, { classes: ['ROLE', 'DDL'], logParameters: false, redact: [], retentionDays: 90 });
  });

  it('the settings and the classifier name the same statement classes', () => {
    assert.equal(AUDIT_CLASSES, CLASSIFIER_CLASSES);
  });
});
