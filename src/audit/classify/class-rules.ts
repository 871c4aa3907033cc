// pgAudit's class of a statement. pgAudit takes PostgreSQL's log_statement level of the command
// (GetCommandLogLevel in src/backend/tcop/utility.c) and refines it (log_audit_event in
// pgaudit.c): MOD is WRITE (EXECUTE: MISC); DDL is DDL unless it is a role or privilege
// statement (ROLE); ALL is READ for SELECT, COPY TO, DECLARE CURSOR and PREPARE of a read,
// FUNCTION for DO, MISC_SET for SET/RESET, MISC for everything else. SELECT/INSERT/UPDATE/DELETE/
// MERGE come from the executor, classed by their operation (the top-level statement).

import { objectType } from './command-tag.js';
import { fieldsOf, isObject, list, nodeType, text } from '../../sql/nodes.js';
import type { StatementClass } from './types.js';

type LogLevel = 'ALL' | 'MOD' | 'DDL';

const MOD = new Set(['InsertStmt', 'DeleteStmt', 'UpdateStmt', 'MergeStmt', 'TruncateStmt']);

const ALL = new Set([
  'PLAssignStmt',
  'TransactionStmt',
  'DeclareCursorStmt',
  'ClosePortalStmt',
  'FetchStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'DoStmt',
  'NotifyStmt',
  'ListenStmt',
  'UnlistenStmt',
  'LoadStmt',
  'CallStmt',
  'VacuumStmt',
  'VariableSetStmt',
  'VariableShowStmt',
  'DiscardStmt',
  'LockStmt',
  'ConstraintsSetStmt',
  'CheckPointStmt',
  'ReindexStmt',
]);

/** DDL-level statements pgAudit puts in ROLE. */
const ROLE = new Set([
  'CreateRoleStmt',
  'AlterRoleStmt',
  'CreateUserMappingStmt',
  'AlterUserMappingStmt',
  'GrantStmt',
  'GrantRoleStmt',
  'DropRoleStmt',
  'AlterRoleSetStmt',
  'AlterDefaultPrivilegesStmt',
]);

/** GetCommandLogLevel. Statements it does not list (there are none in PG 18) are ALL. */
export function logLevel(stmt: unknown): LogLevel {
  const type = nodeType(stmt);
  if (type === undefined) return 'ALL';
  const f = fieldsOf(stmt);
  if (MOD.has(type)) return 'MOD';
  if (ALL.has(type)) return 'ALL';
  switch (type) {
    case 'SelectStmt':
      return isObject(f['intoClause']) ? 'DDL' : 'ALL';
    case 'CopyStmt':
      return f['is_from'] === true ? 'MOD' : 'ALL';
    case 'PrepareStmt':
      return logLevel(f['query']);
    case 'ExplainStmt':
      return explainAnalyze(f['options']) ? logLevel(f['query']) : 'ALL';
    default:
      return type.endsWith('Stmt') ? 'DDL' : 'ALL';
  }
}

/** The pgAudit class of a statement node. */
export function statementClass(stmt: unknown): StatementClass {
  const type = nodeType(stmt) ?? '';
  switch (logLevel(stmt)) {
    case 'MOD':
      return type === 'ExecuteStmt' ? 'MISC' : 'WRITE';
    case 'DDL':
      return isRoleStatement(type, fieldsOf(stmt)) ? 'ROLE' : 'DDL';
    case 'ALL':
      switch (type) {
        case 'CopyStmt':
        case 'DeclareCursorStmt':
        case 'SelectStmt':
        case 'PrepareStmt':
          return 'READ';
        case 'DoStmt':
          return 'FUNCTION';
        case 'VariableSetStmt':
          return 'MISC_SET';
        default:
          return 'MISC';
      }
  }
}

function isRoleStatement(type: string, f: { readonly [k: string]: unknown }): boolean {
  if (ROLE.has(type)) return true;
  // RENAME/DROP are role statements when their tag is ALTER ROLE / DROP ROLE.
  if (type === 'RenameStmt') return objectType(f['renameType']) === 'ROLE';
  if (type === 'DropStmt') return objectType(f['removeType']) === 'ROLE';
  return false;
}

/** EXPLAIN's ANALYZE option, the last one winning, as explain.c reads it. */
export function explainAnalyze(options: unknown): boolean {
  let analyze = false;
  for (const option of list(options)) {
    const f = fieldsOf(option);
    if (f['defname'] !== 'analyze') continue;
    analyze = booleanArg(f['arg']);
  }
  return analyze;
}

/** defGetBoolean: no argument is true; true/false/on/off/1/0 as words or numbers. */
function booleanArg(arg: unknown): boolean {
  if (arg === undefined) return true;
  const f = fieldsOf(arg);
  if (typeof f['boolval'] === 'boolean') return f['boolval'];
  if (nodeType(arg) === 'Boolean') return f['boolval'] === true;
  if (nodeType(arg) === 'Integer') return f['ival'] !== undefined && f['ival'] !== 0;
  const word = (text(f['sval']) ?? '').toLowerCase();
  return !(word === 'false' || word === 'off' || word === '0' || word === 'no');
}
