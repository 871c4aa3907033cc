// The pgAudit line reader keeps only lines with pgAudit's own shape: a LOG record without the
// client's statement or a PL context (pgAudit hides both), from pgaudit.c when the log says where
// a message comes from, with pgAudit's CSV fields. `RAISE LOG 'AUDIT: ...'` in a DO block or a
// function writes a line that looks alike but carries its context and statement: refused, as is
// the same text rewritten by pgwarden_audit on the server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePgAuditLine } from '../../../src/audit/pgaudit-line.js';

const MESSAGE = 'AUDIT: SESSION,1,1,DDL,DROP TABLE,TABLE,public.x,DROP TABLE x,<not logged>';

/** A jsonlog record the way PostgreSQL 15 writes a genuine pgAudit line (no statement, no context). */
function genuine(extra: Record<string, unknown> = {}, message = MESSAGE): Record<string, unknown> {
  return {
    timestamp: '2026-01-02 03:04:05.678 UTC',
    user: 'owner',
    dbname: 'postgres',
    pid: 4242,
    remote_host: '[local]',
    session_id: '6770a1b2.1092',
    line_num: 9,
    ps: 'DROP TABLE',
    session_start: '2026-01-02 03:04:00 UTC',
    vxid: '3/17',
    txid: 0,
    error_severity: 'LOG',
    message,
    application_name: 'psql',
    backend_type: 'client backend',
    query_id: 0,
    ...extra,
  };
}

const line = (j: Record<string, unknown>) => JSON.stringify(j);

describe('pgAudit line reader', () => {
  it('reads a genuine line, and one that says it comes from log_audit_event() in pgaudit.c', () => {
    const a = parsePgAuditLine(line(genuine()));
    assert.ok(a);
    assert.deepEqual(
      [a.auditType, a.statementId, a.substatementId, a.class, a.command, a.objectName, a.statement],
      ['SESSION', 1, 1, 'DDL', 'DROP TABLE', 'public.x', 'DROP TABLE x'],
    );
    assert.ok(parsePgAuditLine(line(genuine({ file_name: 'pgaudit.c', func_name: 'log_audit_event', file_line_num: 1234 }))));
  });

  it("refuses RAISE LOG in a DO block: a PL context and the client's statement", () => {
    const raised = genuine({
      statement: `DO $$ BEGIN RAISE LOG '${MESSAGE}'; END $$`,
      context: 'PL/pgSQL function inline_code_block line 1 at RAISE',
    });
    assert.equal(parsePgAuditLine(line(raised)), null);
    assert.equal(parsePgAuditLine(line(genuine({ context: 'PL/pgSQL function f() line 1 at RAISE' }))), null);
    assert.equal(parsePgAuditLine(line(genuine({ statement: 'select f()' }))), null);
    assert.equal(parsePgAuditLine(line(genuine({ internal_query: 'select 1' }))), null);
  });

  it('refuses other severities and other sources', () => {
    assert.equal(parsePgAuditLine(line(genuine({ error_severity: 'ERROR', sql_state_code: 'P0001' }))), null);
    assert.equal(parsePgAuditLine(line(genuine({ error_severity: 'NOTICE' }))), null);
    assert.equal(parsePgAuditLine(line(genuine({ file_name: 'pl_exec.c', func_name: 'exec_stmt_raise' }))), null);
    assert.equal(parsePgAuditLine(line(genuine({ file_name: 'pgaudit.c', func_name: 'pgaudit_ExecutorStart_hook' }))), null);
  });

  it("refuses the text pgwarden_audit rewrote, and messages without pgAudit's fields", () => {
    assert.equal(parsePgAuditLine(line(genuine({}, `not a pgAudit record: ${MESSAGE}`))), null);
    for (const bad of [
      'AUDIT: SESSIONS,1,1,DDL,DROP TABLE,TABLE,public.x,DROP TABLE x,<not logged>',
      'AUDIT: SESSION,one,1,DDL,DROP TABLE,TABLE,public.x,DROP TABLE x,<not logged>',
      'AUDIT: SESSION,1,-1,DDL,DROP TABLE,TABLE,public.x,DROP TABLE x,<not logged>',
      'AUDIT: SESSION,1,1,ddl,DROP TABLE,TABLE,public.x,DROP TABLE x,<not logged>',
      'AUDIT: SESSION,1,1,DDL,DROP TABLE',
    ]) {
      assert.equal(parsePgAuditLine(line(genuine({}, bad))), null, bad);
    }
  });
});
