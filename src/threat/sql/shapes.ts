// Injection shapes, judged on PostgreSQL's own parse tree (libpg-query) and scanner tokens:
// a constant-true branch of an OR in a WHERE/HAVING/ON clause, a UNION branch that reads the
// catalog or probes with NULL columns, a destructive statement stacked after an application
// statement, a comment that starts right after a string literal and cuts the statement, sleeps in
// a condition, casts of system values to numbers (error-based), and file or program access;
// probes.ts adds the shapes that carry over from one payload to the next (row-independent
// predicates, string building, division oracles). Catalog queries (psql's own) are told apart by
// the system relations in their own FROM.
import { parseSql, scanSql, type RawStatement } from '../../sql/parser.js';
import { fieldsOf, list, names, nodeType, some, walk } from '../../sql/nodes.js';
import { booleanProbe, catalogQuery, touchesSystem, errorCast as errorCastProbe, errorDivision, stringBuilding, unionNumbers } from './probes.js';

export type SqlShape =
  | 'tautology'
  | 'union-extraction'
  | 'stacked-statements'
  | 'comment-truncation'
  | 'time-based'
  | 'error-based-cast'
  | 'file-access'
  | 'catalog-access'
  | 'boolean-probe'
  | 'string-building'
  | 'error-division'
  | 'learned-shape';

const SECRET_RELATIONS = new Set(['pg_shadow', 'pg_authid', 'pg_user_mapping', 'pg_user_mappings']);
const SYSTEM_VALUES = new Set(['version', 'current_user', 'session_user', 'current_database', 'current_schema', 'inet_server_addr', 'user']);
const FILE_FUNCTIONS = new Set([
  'pg_read_file',
  'pg_read_binary_file',
  'pg_ls_dir',
  'pg_stat_file',
  'lo_import',
  'lo_export',
  'dblink',
  'dblink_exec',
  'dblink_connect',
]);
const SLEEPS = new Set(['pg_sleep', 'pg_sleep_for', 'pg_sleep_until']);
const DESTRUCTIVE = new Set([
  'DropStmt',
  'TruncateStmt',
  'GrantStmt',
  'GrantRoleStmt',
  'AlterRoleStmt',
  'CreateRoleStmt',
  'CopyStmt',
  'DropRoleStmt',
  'AlterTableStmt',
  'DeleteStmt',
  'UpdateStmt',
  'InsertStmt',
  'CreateFunctionStmt',
  'DoStmt',
]);
const STACKED_OTHER = new Set([
  'CreateStmt',
  'CreateTableAsStmt',
  'AlterSystemStmt',
  'CreateExtensionStmt',
  'AlterOwnerStmt',
  'CreateEventTrigStmt',
  'LoadStmt',
  'RenameStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
  'AlterDatabaseSetStmt',
  'AlterRoleSetStmt',
]);
const APP_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);
const SCONST = 261;
/** FCONST and ICONST. */
const NUMBERS = new Set([260, 266]);

const funcName = (f: Record<string, unknown>) => names(f['funcname']).at(-1)?.toLowerCase() ?? '';

/** A constant's value, or undefined when the node is not a constant. */
function constant(node: unknown): string | number | boolean | undefined {
  const type = nodeType(node);
  const f = fieldsOf(node);
  if (type === 'TypeCast') return constant(f['arg']);
  if (type !== 'A_Const') return undefined;
  if ('boolval' in f) return Boolean(fieldsOf(f['boolval'])['boolval']);
  if ('ival' in f) return Number(fieldsOf(f['ival'])['ival'] ?? 0);
  if ('fval' in f) return Number(fieldsOf(f['fval'])['fval']);
  if ('sval' in f) return String(fieldsOf(f['sval'])['sval'] ?? '');
  if (f['isnull']) return undefined;
  return undefined;
}

/** True when the expression is true whatever the row: `1=1`, `'a'='a'`, `2>1`, `true`, `1`, `NOT false`. */
function alwaysTrue(node: unknown): boolean {
  const type = nodeType(node);
  const f = fieldsOf(node);
  if (type === 'A_Const' || type === 'TypeCast') {
    const v = constant(node);
    return v === true || (typeof v === 'number' && v !== 0) || v === 't';
  }
  if (type === 'BoolExpr') {
    const args = list(f['args']);
    if (f['boolop'] === 'NOT_EXPR') return alwaysFalse(args[0]);
    if (f['boolop'] === 'OR_EXPR') return args.some(alwaysTrue);
    return args.length > 0 && args.every(alwaysTrue);
  }
  if (type === 'A_Expr' && f['kind'] === 'AEXPR_OP') {
    const a = constant(f['lexpr']);
    const b = constant(f['rexpr']);
    if (a === undefined || b === undefined) return sameColumn(f['lexpr'], f['rexpr']) && names(f['name'])[0] === '=';
    const op = names(f['name'])[0];
    const x = typeof a === 'number' && typeof b !== 'number' ? String(a) : a;
    const y = typeof b === 'number' && typeof a !== 'number' ? String(b) : b;
    switch (op) {
      case '=':
        return x === y;
      case '<>':
      case '!=':
        return x !== y;
      case '<':
        return x < y;
      case '>':
        return x > y;
      case '<=':
        return x <= y;
      case '>=':
        return x >= y;
      default:
        return false;
    }
  }
  if (type === 'A_Expr' && f['kind'] === 'AEXPR_LIKE') {
    const a = constant(f['lexpr']);
    const b = constant(f['rexpr']);
    return typeof a === 'string' && typeof b === 'string' && (b === '%' || a === b);
  }
  return false;
}

function alwaysFalse(node: unknown): boolean {
  const v = constant(node);
  return v === false || v === 0 || v === 'f';
}

/** `x = x` on the same column. */
function sameColumn(a: unknown, b: unknown): boolean {
  return nodeType(a) === 'ColumnRef' && nodeType(b) === 'ColumnRef' && JSON.stringify(fieldsOf(a)['fields']) === JSON.stringify(fieldsOf(b)['fields']);
}

function conditions(stmt: unknown): unknown[] {
  const out: unknown[] = [];
  walk(stmt, (_type, f) => {
    for (const key of ['whereClause', 'havingClause', 'quals']) if (f[key]) out.push(f[key]);
  });
  return out;
}

function tautology(stmt: unknown): boolean {
  // An always-true OR branch anywhere (WHERE, ON, HAVING, but also SET and VALUES, where an
  // injected numeric slot lands), or a condition that is always true by itself.
  // Also `a OR 1=1 AND b` (precedence makes it OR(a, AND(1=1, b))): a constant-true comparison
  // inside an OR branch. `WHERE 1=1 AND ...` of query builders has no OR around it.
  return (
    some(
      stmt,
      (type, f) =>
        type === 'BoolExpr' &&
        f['boolop'] === 'OR_EXPR' &&
        list(f['args']).some(
          (arg) =>
            alwaysTrue(arg) ||
            some(arg, (t, g) => t === 'A_Expr' && constant(g['lexpr']) !== undefined && constant(g['rexpr']) !== undefined && alwaysTrue({ A_Expr: g })),
        ),
    ) || conditions(stmt).some(alwaysTrue)
  );
}

function readsSystem(node: unknown): boolean {
  return some(node, (type, f) => {
    if (type === 'RangeVar') {
      const rel = String(f['relname'] ?? '').toLowerCase();
      const schema = String(f['schemaname'] ?? '').toLowerCase();
      return rel.startsWith('pg_') || schema === 'information_schema' || schema === 'pg_catalog';
    }
    if (type === 'FuncCall') return SYSTEM_VALUES.has(funcName(f));
    return type === 'SQLValueFunction';
  });
}

function unionExtraction(stmt: unknown): boolean {
  return some(stmt, (type, f) => type === 'SelectStmt' && setOpExtraction(f));
}

/** A UNION (at any depth of a chain of set operations: nested branches are bare nodes) whose right
 * branch reads the system or probes columns with NULLs. */
function setOpExtraction(f: Record<string, unknown>): boolean {
  if (f['op'] !== 'SETOP_UNION') return false;
  // A union of two catalog queries (psql's \dd, \d+) reads the catalog on both sides.
  // (A catalog query on the left: only a branch of NULLs without FROM, or one reading passwords.)
  const catalog = leftmostCatalog(f['larg']);
  if (setOpExtraction(fieldsOf(f['larg']))) return true;
  const right = f['rarg'];
  if (catalog && secretRelation(right)) return true;
  if (!catalog && readsSystem(right)) return true;
  const targets = list(fieldsOf(right)['targetList']);
  const nulls = targets.filter((t) => {
    const v = fieldsOf(t)['val'];
    return nodeType(v) === 'A_Const' && fieldsOf(v)['isnull'] === true;
  }).length;
  if (catalog) return !fieldsOf(right)['fromClause'] && targets.length >= 1 && nulls === targets.length;
  return (targets.length >= 1 && nulls === targets.length) || (targets.length >= 2 && nulls >= targets.length - 1);
}

/** The left-most branch of a set operation is a catalog query. */
function leftmostCatalog(node: unknown): boolean {
  const f = fieldsOf(node);
  if (f['op'] && f['op'] !== 'SETOP_NONE') return leftmostCatalog(f['larg']);
  return catalogQuery(node);
}

function stacked(statements: readonly RawStatement[]): boolean {
  if (statements.length < 2) return false;
  const first = nodeType(statements[0]!.stmt) ?? '';
  if (!APP_STATEMENTS.has(first)) return false;
  return statements.slice(1).some((s) => {
    const t = nodeType(s.stmt) ?? '';
    if (DESTRUCTIVE.has(t) && t !== first) return true;
    if (STACKED_OTHER.has(t)) return true;
    // A query of the system (sleep, version, settings, catalogs) after an application statement.
    return t === 'SelectStmt' && (readsSystem(s.stmt) || touchesSystem(s.stmt));
  });
}

function timeBased(stmt: unknown): boolean {
  const sleeps = some(stmt, (type, f) => type === 'FuncCall' && SLEEPS.has(funcName(f)));
  if (!sleeps) return false;
  // `SELECT pg_sleep(n)` on its own is a deliberate pause, not an injection.
  const f = fieldsOf(stmt);
  const plain =
    nodeType(stmt) === 'SelectStmt' &&
    !f['fromClause'] &&
    !f['whereClause'] &&
    f['op'] !== 'SETOP_UNION' &&
    list(f['targetList']).every((t) => {
      const v = fieldsOf(t)['val'];
      return nodeType(v) === 'FuncCall' && SLEEPS.has(funcName(fieldsOf(v)));
    });
  return !plain;
}

function errorCast(stmt: unknown): boolean {
  return (
    some(stmt, (type, f) => {
      if (type !== 'TypeCast') return false;
      const target = names(fieldsOf(f['typeName'])['names']).at(-1)?.toLowerCase() ?? '';
      if (!/^(int[248]?|integer|numeric|bigint|smallint|float[48]|real|double)$/.test(target)) return false;
      return readsSystem(f['arg']);
    }) || some(stmt, (type, f) => type === 'FuncCall' && ['query_to_xml', 'xmlparse', 'database_to_xml'].includes(funcName(f)))
  );
}

function fileAccess(stmt: unknown): boolean {
  return some(stmt, (type, f) => (type === 'FuncCall' && FILE_FUNCTIONS.has(funcName(f))) || (type === 'CopyStmt' && f['is_program'] === true));
}

function catalogSecrets(stmt: unknown): boolean {
  // psql's \deu reads pg_user_mappings in its own FROM: a catalog query, not an extraction.
  if (leftmostCatalog(stmt)) return false;
  return secretRelation(stmt);
}

function secretRelation(stmt: unknown): boolean {
  return some(stmt, (type, f) => type === 'RangeVar' && SECRET_RELATIONS.has(String(f['relname'] ?? '').toLowerCase()));
}

/** A `--` or `/*` comment that follows a string literal at once and holds SQL (a quote, AND/OR, =):
 * what remains of a statement an injected quote cut off. */
function commentTruncation(sql: string): boolean {
  if (!sql.includes('--') && !sql.includes('/*')) return false;
  const tokens = scanSql(sql);
  if (!tokens) return false;
  const buf = Buffer.from(sql, 'utf8');
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!;
    const body = buf.subarray(t.start, t.end).toString('utf8');
    if (!body.startsWith('--') && !body.startsWith('/*')) continue;
    const rest = body.slice(2);
    const prev = tokens[i - 1]!;
    if (prev.type === SCONST && t.start - prev.end <= 1 && (/'/.test(rest) || /\b(and|or)\b|=/i.test(rest))) return true;
    // After a number: what is left of the statement (a quote, a clause, a parenthesis), or nothing.
    if (
      NUMBERS.has(prev.type) &&
      t.start - prev.end <= 1 &&
      body.startsWith('--') &&
      (/^[\s;-]*$/.test(rest) || /'|\)|=/.test(rest) || /\b(and|or|limit|offset|order|group|escape|returning|fetch|where|union)\b/i.test(rest))
    )
      return true;
    if (/'\s*(and|or)\b/i.test(rest)) return true;
  }
  return false;
}

export interface ShapeVerdict {
  readonly shapes: readonly SqlShape[];
  readonly detail: string;
}

export const SHAPE_DETAILS: Record<SqlShape, string> = {
  tautology: 'a condition with an always-true OR branch (such as OR 1=1)',
  'union-extraction': 'a UNION that reads system catalogs or probes columns with NULLs',
  'stacked-statements': 'a destructive statement or a query of the system stacked after an application statement',
  'comment-truncation': 'a comment right after a string literal that cuts off the rest of the statement',
  'time-based': 'a sleep inside a condition (time-based blind injection)',
  'error-based-cast': 'a cast of system information to a number (error-based extraction)',
  'file-access': 'access to server files or programs',
  'catalog-access': 'a read of password or user-mapping catalogs',
  'boolean-probe':
    'a condition that does not depend on the row: constants or system values (current_user, version(), catalog subqueries) compared (boolean-blind probe)',
  'string-building': 'text built with chr() or || around a subquery or a system value',
  'error-division': 'a division by zero or by a subquery (error oracle)',
  'learned-shape': "one of the application's learned statements with extra conditions, a UNION or a comment where a literal used to be",
};

/** The injection shapes of a query string; null when it does not parse (a syntax error). */
export function shapesOf(sql: string): ShapeVerdict | null {
  const parsed = parseSql(sql);
  if (!parsed.ok) return null;
  const shapes = new Set<SqlShape>();
  if (stacked(parsed.statements)) shapes.add('stacked-statements');
  for (const s of parsed.statements) {
    if (tautology(s.stmt)) shapes.add('tautology');
    if (unionExtraction(s.stmt)) shapes.add('union-extraction');
    if (timeBased(s.stmt)) shapes.add('time-based');
    if (errorCast(s.stmt) || errorCastProbe(s.stmt)) shapes.add('error-based-cast');
    if (!shapes.has('tautology') && booleanProbe(s.stmt)) shapes.add('boolean-probe');
    if (stringBuilding(s.stmt)) shapes.add('string-building');
    if (errorDivision(s.stmt)) shapes.add('error-division');
    if (unionNumbers(s.stmt)) shapes.add('union-extraction');
    if (fileAccess(s.stmt)) shapes.add('file-access');
    if (catalogSecrets(s.stmt)) shapes.add('catalog-access');
  }
  if (commentTruncation(sql)) shapes.add('comment-truncation');
  const list2 = [...shapes];
  return { shapes: list2, detail: list2.map((s) => SHAPE_DETAILS[s]).join('; ') };
}
