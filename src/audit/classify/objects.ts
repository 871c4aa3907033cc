// The objects a statement names, from its parse tree: relations (schema-qualified when written
// so; CTE names left out), functions it calls outside pg_catalog, functions, schemas, databases
// and roles its DDL targets. Names are as written: the gateway cannot resolve search_path.

import { BUILTIN_FUNCTIONS } from './builtin-functions.js';
import { objectType } from './command-tag.js';
import { fieldsOf, list, names, nodeType, text, walk } from '../../sql/nodes.js';
import type { Fields } from '../../sql/parser.js';
import type { AuditObject, ObjectKind } from './types.js';

const RELATION_TYPES = new Set(['TABLE', 'VIEW', 'MATVIEW', 'INDEX', 'SEQUENCE', 'FOREIGN_TABLE']);
const FUNCTION_TYPES = new Set(['FUNCTION', 'PROCEDURE', 'ROUTINE', 'AGGREGATE']);

/** True for a call that resolves to pg_catalog (never a FUNCTION event in pgAudit). */
export function isBuiltinCall(funcname: readonly string[]): boolean {
  if (funcname.length === 2) return funcname[0] === 'pg_catalog';
  return funcname.length === 1 && BUILTIN_FUNCTIONS.has(funcname[0]!);
}

/** The user functions a statement calls, as written. */
export function calledFunctions(stmt: unknown): string[] {
  const out: string[] = [];
  walk(stmt, (type, f) => {
    if (type !== 'FuncCall') return;
    const name = names(f['funcname']);
    if (name.length > 0 && !isBuiltinCall(name)) out.push(name.join('.'));
  });
  return out;
}

export function statementObjects(stmt: unknown): AuditObject[] {
  const found = new Collector();
  const ctes = cteNames(stmt);
  const type = nodeType(stmt) ?? '';
  const f = fieldsOf(stmt);
  targets(type, f, found);
  walk(stmt, (nodeKind, node) => {
    switch (nodeKind) {
      case 'RangeVar': {
        const name = qualified(node);
        if (name !== undefined && !(node['schemaname'] === undefined && ctes.has(name))) found.add('relation', name);
        break;
      }
      case 'FuncCall': {
        const name = names(node['funcname']);
        if (name.length > 0 && !isBuiltinCall(name)) found.add('function', name.join('.'));
        break;
      }
      case 'ObjectWithArgs': {
        const name = names(node['objname']);
        if (name.length > 0) found.add('function', name.join('.'));
        break;
      }
      case 'RoleSpec': {
        const role = text(node['rolename']);
        if (role !== undefined) found.add('role', role);
        break;
      }
    }
  });
  return found.objects;
}

/** Objects a DDL statement names by plain strings rather than by typed nodes. */
function targets(type: string, f: Fields, found: Collector): void {
  switch (type) {
    case 'CreateRoleStmt':
      found.addText('role', f['role']);
      break;
    case 'RenameStmt':
      if (objectType(f['renameType']) === 'ROLE') {
        found.addText('role', f['subname']);
        found.addText('role', f['newname']);
      } else if (objectType(f['renameType']) === 'SCHEMA') {
        found.addText('schema', f['subname']);
      }
      break;
    case 'GrantRoleStmt':
      for (const granted of list(f['granted_roles'])) found.addText('role', fieldsOf(granted)['priv_name']);
      break;
    case 'GrantStmt':
      grantTargets(f, found);
      break;
    case 'DropStmt':
      dropTargets(f, found);
      break;
    case 'CreateSchemaStmt':
      found.addText('schema', f['schemaname']);
      break;
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'AlterDatabaseStmt':
    case 'AlterDatabaseSetStmt':
    case 'AlterDatabaseRefreshCollStmt':
      found.addText('database', f['dbname']);
      break;
    case 'IndexStmt': {
      const index = text(f['idxname']);
      const schema = text(fieldsOf(f['relation'])['schemaname']);
      if (index !== undefined) found.add('relation', schema !== undefined ? `${schema}.${index}` : index);
      break;
    }
    case 'CreateFunctionStmt':
    case 'CreateTrigStmt': {
      const name = names(f['funcname']);
      if (name.length > 0) found.add('function', name.join('.'));
      break;
    }
    case 'CreateExtensionStmt':
    case 'AlterExtensionStmt':
      found.addText('other', f['extname']);
      break;
  }
}

function grantTargets(f: Fields, found: Collector): void {
  const objtype = objectType(f['objtype']);
  const allInSchema = f['targtype'] === 'ACL_TARGET_ALL_IN_SCHEMA';
  for (const object of list(f['objects'])) {
    if (nodeType(object) !== 'String') continue; // RangeVar and ObjectWithArgs are walked
    const name = text(fieldsOf(object)['sval']);
    if (name === undefined) continue;
    found.add(allInSchema || objtype === 'SCHEMA' ? 'schema' : objtype === 'DATABASE' ? 'database' : 'other', name);
  }
}

function dropTargets(f: Fields, found: Collector): void {
  const removeType = objectType(f['removeType']);
  const kind: ObjectKind = RELATION_TYPES.has(removeType)
    ? 'relation'
    : removeType === 'SCHEMA'
      ? 'schema'
      : FUNCTION_TYPES.has(removeType)
        ? 'function'
        : 'other';
  for (const object of list(f['objects'])) {
    const type = nodeType(object);
    if (type === 'ObjectWithArgs') continue; // walked
    if (type === 'List') found.add(kind, names(fieldsOf(object)['items']).join('.'));
    else if (type === 'String') found.addText(kind, fieldsOf(object)['sval']);
    else if (type === 'TypeName') found.add('other', names(fieldsOf(object)['names']).join('.'));
  }
}

function qualified(rangeVar: Fields): string | undefined {
  const rel = text(rangeVar['relname']);
  if (rel === undefined) return undefined;
  return [text(rangeVar['catalogname']), text(rangeVar['schemaname']), rel].filter((p) => p !== undefined).join('.');
}

function cteNames(stmt: unknown): Set<string> {
  const out = new Set<string>();
  walk(stmt, (type, f) => {
    if (type === 'CommonTableExpr') {
      const name = text(f['ctename']);
      if (name !== undefined) out.add(name);
    }
  });
  return out;
}

class Collector {
  readonly objects: AuditObject[] = [];
  private readonly seen = new Set<string>();

  add(kind: ObjectKind, name: string): void {
    if (name === '') return;
    const id = `${kind}:${name}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.objects.push({ kind, name });
  }

  addText(kind: ObjectKind, name: unknown): void {
    if (typeof name === 'string') this.add(kind, name);
  }
}
