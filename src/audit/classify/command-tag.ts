// PostgreSQL's command tag of a raw statement (CreateCommandTag in src/backend/tcop/utility.c),
// as the server reports it in CommandComplete, without row counts. "???" is CMDTAG_UNKNOWN.

import { fieldsOf, nodeType, text } from '../../sql/nodes.js';
import type { Fields } from '../../sql/parser.js';

export const UNKNOWN_TAG = '???';

/** SQL words for ObjectType values (OBJECT_ prefix removed). */
const OBJECT_WORDS: Readonly<Record<string, string>> = {
  ACCESS_METHOD: 'ACCESS METHOD',
  AGGREGATE: 'AGGREGATE',
  CAST: 'CAST',
  COLLATION: 'COLLATION',
  CONVERSION: 'CONVERSION',
  DATABASE: 'DATABASE',
  DOMAIN: 'DOMAIN',
  EVENT_TRIGGER: 'EVENT TRIGGER',
  EXTENSION: 'EXTENSION',
  FDW: 'FOREIGN DATA WRAPPER',
  FOREIGN_SERVER: 'SERVER',
  FOREIGN_TABLE: 'FOREIGN TABLE',
  FUNCTION: 'FUNCTION',
  INDEX: 'INDEX',
  LANGUAGE: 'LANGUAGE',
  LARGEOBJECT: 'LARGE OBJECT',
  MATVIEW: 'MATERIALIZED VIEW',
  OPCLASS: 'OPERATOR CLASS',
  OPERATOR: 'OPERATOR',
  OPFAMILY: 'OPERATOR FAMILY',
  POLICY: 'POLICY',
  PROCEDURE: 'PROCEDURE',
  PUBLICATION: 'PUBLICATION',
  ROLE: 'ROLE',
  ROUTINE: 'ROUTINE',
  RULE: 'RULE',
  SCHEMA: 'SCHEMA',
  SEQUENCE: 'SEQUENCE',
  STATISTIC_EXT: 'STATISTICS',
  SUBSCRIPTION: 'SUBSCRIPTION',
  TABLE: 'TABLE',
  TABLESPACE: 'TABLESPACE',
  TRANSFORM: 'TRANSFORM',
  TRIGGER: 'TRIGGER',
  TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  TSPARSER: 'TEXT SEARCH PARSER',
  TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  TYPE: 'TYPE',
  VIEW: 'VIEW',
};

/** ObjectTypes AlterObjectTypeCommandTag maps to another word. */
const ALTER_ALIASES: Readonly<Record<string, string>> = {
  ATTRIBUTE: 'TYPE',
  COLUMN: 'TABLE',
  DOMCONSTRAINT: 'DOMAIN',
  TABCONSTRAINT: 'TABLE',
};
const NOT_ALTERABLE = new Set(['ACCESS_METHOD', 'TRANSFORM']);
const NOT_DROPPABLE = new Set(['DATABASE', 'LARGEOBJECT', 'ROLE', 'SUBSCRIPTION', 'TABLESPACE']);
const DEFINABLE = new Set(['AGGREGATE', 'OPERATOR', 'TYPE', 'TSPARSER', 'TSDICTIONARY', 'TSTEMPLATE', 'TSCONFIGURATION', 'COLLATION', 'ACCESS_METHOD']);

/** Tags that depend on the node type only. */
const FIXED: Readonly<Record<string, string>> = {
  InsertStmt: 'INSERT',
  DeleteStmt: 'DELETE',
  UpdateStmt: 'UPDATE',
  MergeStmt: 'MERGE',
  SelectStmt: 'SELECT',
  PLAssignStmt: 'SELECT',
  DeclareCursorStmt: 'DECLARE CURSOR',
  CreateDomainStmt: 'CREATE DOMAIN',
  CreateSchemaStmt: 'CREATE SCHEMA',
  CreateStmt: 'CREATE TABLE',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  AlterTableSpaceOptionsStmt: 'ALTER TABLESPACE',
  CreateExtensionStmt: 'CREATE EXTENSION',
  AlterExtensionStmt: 'ALTER EXTENSION',
  AlterExtensionContentsStmt: 'ALTER EXTENSION',
  CreateFdwStmt: 'CREATE FOREIGN DATA WRAPPER',
  AlterFdwStmt: 'ALTER FOREIGN DATA WRAPPER',
  CreateForeignServerStmt: 'CREATE SERVER',
  AlterForeignServerStmt: 'ALTER SERVER',
  CreateUserMappingStmt: 'CREATE USER MAPPING',
  AlterUserMappingStmt: 'ALTER USER MAPPING',
  DropUserMappingStmt: 'DROP USER MAPPING',
  CreateForeignTableStmt: 'CREATE FOREIGN TABLE',
  ImportForeignSchemaStmt: 'IMPORT FOREIGN SCHEMA',
  TruncateStmt: 'TRUNCATE TABLE',
  CommentStmt: 'COMMENT',
  SecLabelStmt: 'SECURITY LABEL',
  CopyStmt: 'COPY',
  AlterDomainStmt: 'ALTER DOMAIN',
  AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
  CompositeTypeStmt: 'CREATE TYPE',
  CreateEnumStmt: 'CREATE TYPE',
  CreateRangeStmt: 'CREATE TYPE',
  AlterEnumStmt: 'ALTER TYPE',
  ViewStmt: 'CREATE VIEW',
  IndexStmt: 'CREATE INDEX',
  RuleStmt: 'CREATE RULE',
  CreateSeqStmt: 'CREATE SEQUENCE',
  AlterSeqStmt: 'ALTER SEQUENCE',
  DoStmt: 'DO',
  CreatedbStmt: 'CREATE DATABASE',
  AlterDatabaseStmt: 'ALTER DATABASE',
  AlterDatabaseRefreshCollStmt: 'ALTER DATABASE',
  AlterDatabaseSetStmt: 'ALTER DATABASE',
  DropdbStmt: 'DROP DATABASE',
  NotifyStmt: 'NOTIFY',
  ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN',
  LoadStmt: 'LOAD',
  CallStmt: 'CALL',
  ClusterStmt: 'CLUSTER',
  ExplainStmt: 'EXPLAIN',
  RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW',
  AlterSystemStmt: 'ALTER SYSTEM',
  VariableShowStmt: 'SHOW',
  CreateTransformStmt: 'CREATE TRANSFORM',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
  AlterEventTrigStmt: 'ALTER EVENT TRIGGER',
  CreatePLangStmt: 'CREATE LANGUAGE',
  CreateRoleStmt: 'CREATE ROLE',
  AlterRoleStmt: 'ALTER ROLE',
  AlterRoleSetStmt: 'ALTER ROLE',
  DropRoleStmt: 'DROP ROLE',
  DropOwnedStmt: 'DROP OWNED',
  ReassignOwnedStmt: 'REASSIGN OWNED',
  LockStmt: 'LOCK TABLE',
  ConstraintsSetStmt: 'SET CONSTRAINTS',
  CheckPointStmt: 'CHECKPOINT',
  ReindexStmt: 'REINDEX',
  CreateConversionStmt: 'CREATE CONVERSION',
  CreateCastStmt: 'CREATE CAST',
  CreateOpClassStmt: 'CREATE OPERATOR CLASS',
  CreateOpFamilyStmt: 'CREATE OPERATOR FAMILY',
  AlterOpFamilyStmt: 'ALTER OPERATOR FAMILY',
  AlterOperatorStmt: 'ALTER OPERATOR',
  AlterTypeStmt: 'ALTER TYPE',
  AlterTSDictionaryStmt: 'ALTER TEXT SEARCH DICTIONARY',
  AlterTSConfigurationStmt: 'ALTER TEXT SEARCH CONFIGURATION',
  CreatePolicyStmt: 'CREATE POLICY',
  AlterPolicyStmt: 'ALTER POLICY',
  CreateAmStmt: 'CREATE ACCESS METHOD',
  CreatePublicationStmt: 'CREATE PUBLICATION',
  AlterPublicationStmt: 'ALTER PUBLICATION',
  CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
  AlterSubscriptionStmt: 'ALTER SUBSCRIPTION',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  AlterCollationStmt: 'ALTER COLLATION',
  PrepareStmt: 'PREPARE',
  ExecuteStmt: 'EXECUTE',
  CreateStatsStmt: 'CREATE STATISTICS',
  AlterStatsStmt: 'ALTER STATISTICS',
};

const TRANSACTION_TAGS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

const DISCARD_TAGS: Readonly<Record<string, string>> = {
  DISCARD_ALL: 'DISCARD ALL',
  DISCARD_PLANS: 'DISCARD PLANS',
  DISCARD_TEMP: 'DISCARD TEMP',
  DISCARD_SEQUENCES: 'DISCARD SEQUENCES',
};

/** The command tag of a statement node ({"SelectStmt": {...}}). */
export function commandTag(stmt: unknown): string {
  const type = nodeType(stmt);
  if (type === undefined) return UNKNOWN_TAG;
  const f = fieldsOf(stmt);
  // SELECT INTO is a CreateTableAsStmt once analyzed: pgAudit and the server's DDL see that.
  if (type === 'SelectStmt' && f['intoClause'] !== undefined) return 'SELECT INTO';
  const fixed = FIXED[type];
  if (fixed !== undefined) return fixed;
  switch (type) {
    case 'TransactionStmt':
      return TRANSACTION_TAGS[text(f['kind']) ?? ''] ?? UNKNOWN_TAG;
    case 'ClosePortalStmt':
      return f['portalname'] === undefined ? 'CLOSE CURSOR ALL' : 'CLOSE CURSOR';
    case 'FetchStmt':
      return f['ismove'] === true ? 'MOVE' : 'FETCH';
    case 'DropStmt':
      return dropTag(objectType(f['removeType']));
    case 'RenameStmt': {
      const renamed = objectType(f['renameType']);
      return alterTag(renamed === 'COLUMN' ? objectType(f['relationType']) : renamed);
    }
    case 'AlterObjectDependsStmt':
    case 'AlterObjectSchemaStmt':
    case 'AlterOwnerStmt':
      return alterTag(objectType(f['objectType']));
    case 'AlterTableMoveAllStmt':
    case 'AlterTableStmt':
      return alterTag(objectType(f['objtype']));
    case 'AlterFunctionStmt': {
      const t = objectType(f['objtype']);
      return t === 'FUNCTION' || t === 'PROCEDURE' || t === 'ROUTINE' ? `ALTER ${t}` : UNKNOWN_TAG;
    }
    case 'GrantStmt':
      return f['is_grant'] === true ? 'GRANT' : 'REVOKE';
    case 'GrantRoleStmt':
      return f['is_grant'] === true ? 'GRANT ROLE' : 'REVOKE ROLE';
    case 'DefineStmt': {
      const t = objectType(f['kind']);
      return DEFINABLE.has(t) ? `CREATE ${OBJECT_WORDS[t]}` : UNKNOWN_TAG;
    }
    case 'CreateFunctionStmt':
      return f['is_procedure'] === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION';
    case 'VacuumStmt':
      return f['is_vacuumcmd'] === true ? 'VACUUM' : 'ANALYZE';
    case 'CreateTableAsStmt':
      return createTableAsTag(f);
    case 'VariableSetStmt': {
      const kind = text(f['kind']) ?? '';
      return kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL' ? 'RESET' : kind === '' ? UNKNOWN_TAG : 'SET';
    }
    case 'DiscardStmt':
      return DISCARD_TAGS[text(f['target']) ?? ''] ?? UNKNOWN_TAG;
    case 'DeallocateStmt':
      return f['isall'] === true || f['name'] === undefined ? 'DEALLOCATE ALL' : 'DEALLOCATE';
    default:
      return UNKNOWN_TAG;
  }
}

function createTableAsTag(f: Fields): string {
  const t = objectType(f['objtype']);
  if (t === 'MATVIEW') return 'CREATE MATERIALIZED VIEW';
  if (t === 'TABLE') return f['is_select_into'] === true ? 'SELECT INTO' : 'CREATE TABLE AS';
  return UNKNOWN_TAG;
}

/** "OBJECT_TABLE" gives "TABLE". */
export function objectType(v: unknown): string {
  const s = text(v) ?? '';
  return s.startsWith('OBJECT_') ? s.slice(7) : s;
}

function alterTag(t: string): string {
  const word = OBJECT_WORDS[ALTER_ALIASES[t] ?? t];
  return word === undefined || NOT_ALTERABLE.has(t) ? UNKNOWN_TAG : `ALTER ${word}`;
}

function dropTag(t: string): string {
  const word = OBJECT_WORDS[t];
  return word === undefined || NOT_DROPPABLE.has(t) ? UNKNOWN_TAG : `DROP ${word}`;
}
