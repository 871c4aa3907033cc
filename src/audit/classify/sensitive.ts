// Where a statement carries values that must not reach the audit log: the password of CREATE/ALTER
// ROLE and of user mappings (always, as pgAudit does), the body of a DO block that mentions a
// password, and literals or $n parameters compared with or assigned to operator-named columns.
// Locations are byte offsets into the parsed text (A_Const and DefElem locations).

import { fieldsOf, list, nodeType, text, walk } from '../../sql/nodes.js';
import type { Fields } from '../../sql/parser.js';

export interface SensitiveValues {
  /** A_Const locations of literals to redact. */
  readonly constants: number[];
  /** $n numbers whose bound values to redact. */
  readonly params: number[];
}

const ROLE_STATEMENTS = new Set(['CreateRoleStmt', 'AlterRoleStmt', 'CreateUserMappingStmt', 'AlterUserMappingStmt']);

/** A connection string carrying a password (dblink, subscriptions, foreign servers). */
export const CONNINFO_PASSWORD = /password\s*=/i;

/**
 * Locations after which the next literal is a secret: every option whose name contains
 * "password" (CREATE/ALTER ROLE ... PASSWORD, user mapping and server OPTIONS), and the body of
 * a DO block that mentions a password.
 */
export function secretLocations(stmt: unknown): number[] {
  const out: number[] = [];
  const isDo = nodeType(stmt) === 'DoStmt';
  walk(stmt, (type, f) => {
    if (type !== 'DefElem' || f['arg'] === undefined || typeof f['location'] !== 'number') return;
    const name = (text(f['defname']) ?? '').toLowerCase();
    if (name.includes('password')) out.push(f['location']);
    else if (isDo && name === 'as' && /password/i.test(text(fieldsOf(f['arg'])['sval']) ?? '')) out.push(f['location']);
  });
  return out;
}

/** Statements whose text is never cached (it may hold a password). */
export function holdsSecret(stmt: unknown): boolean {
  return ROLE_STATEMENTS.has(nodeType(stmt) ?? '') || secretLocations(stmt).length > 0;
}

/** Literals and parameters bound to one of `columns` (lower-case names). */
export function columnValues(stmt: unknown, columns: ReadonlySet<string>): SensitiveValues {
  const found: SensitiveValues = { constants: [], params: [] };
  if (columns.size === 0) return found;
  const isSensitive = (name: unknown): boolean => typeof name === 'string' && columns.has(name.toLowerCase());
  walk(stmt, (type, f) => {
    switch (type) {
      case 'A_Expr': {
        if (isSensitive(columnName(f['lexpr']))) collect(f['rexpr'], found);
        if (isSensitive(columnName(f['rexpr']))) collect(f['lexpr'], found);
        break;
      }
      case 'ResTarget':
        if (isSensitive(f['name'])) collect(assignedValue(f['val']), found);
        break;
      case 'InsertStmt':
        insertValues(f, isSensitive, found);
        break;
      case 'MergeWhenClause':
        positional(list(f['targetList']), list(f['values']), isSensitive, found);
        break;
    }
  });
  return found;
}

/** The column a ColumnRef names (its last field), if `node` is one. */
function columnName(node: unknown): string | undefined {
  if (nodeType(node) !== 'ColumnRef') return undefined;
  const fields = list(fieldsOf(node)['fields']);
  const last = fields[fields.length - 1];
  return nodeType(last) === 'String' ? text(fieldsOf(last)['sval']) : undefined;
}

/** SET (a, b) = (1, 2) gives each target a MultiAssignRef to its element of the row. */
function assignedValue(val: unknown): unknown {
  if (nodeType(val) !== 'MultiAssignRef') return val;
  const f = fieldsOf(val);
  const source = fieldsOf(f['source']);
  const colno = typeof f['colno'] === 'number' ? f['colno'] : 0;
  const args = list(source['args']);
  return args.length >= colno && colno > 0 ? args[colno - 1] : f['source'];
}

function insertValues(f: Fields, isSensitive: (name: unknown) => boolean, found: SensitiveValues): void {
  const cols = list(f['cols']);
  if (cols.length === 0) return;
  const select = fieldsOf(f['selectStmt']);
  for (const row of list(select['valuesLists'])) positional(cols, list(fieldsOf(row)['items']), isSensitive, found);
  const targets = list(select['targetList']).map((t) => fieldsOf(t)['val']);
  positional(cols, targets, isSensitive, found);
}

/** Values matched to target columns by position. */
function positional(targets: readonly unknown[], values: readonly unknown[], isSensitive: (name: unknown) => boolean, found: SensitiveValues): void {
  for (let i = 0; i < targets.length && i < values.length; i++) {
    if (isSensitive(fieldsOf(targets[i])['name'])) collect(values[i], found);
  }
}

function collect(node: unknown, found: SensitiveValues): void {
  if (node === undefined) return;
  walk(node, (type, f) => {
    if (type === 'A_Const' && typeof f['location'] === 'number') found.constants.push(f['location']);
    else if (type === 'ParamRef' && typeof f['number'] === 'number') found.params.push(f['number']);
  });
}
