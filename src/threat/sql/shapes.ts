// Injection shapes, judged on PostgreSQL's own parse tree (libpg-query) and scanner tokens:
// a constant-true branch of an OR in a WHERE/HAVING/ON clause, a UNION branch that reads the
// catalog or probes with NULL columns, a destructive statement stacked after an application
// statement, a comment that starts right after a string literal and cuts the statement, sleeps in
// a condition, casts of system values to numbers (error-based), and file or program access.
import { parseSql, scanSql, type RawStatement } from '../../audit/classify/parser.js';
import { fieldsOf, list, names, nodeType, some, walk } from '../../audit/classify/nodes.js';

export type SqlShape = 'tautology' | 'union-extraction' | 'stacked-statements' | 'comment-truncation' | 'time-based' | 'error-based-cast' | 'file-access' | 'catalog-access';

const SECRET_RELATIONS = new Set(['pg_shadow', 'pg_authid', 'pg_user_mapping', 'pg_user_mappings']);
const SYSTEM_VALUES = new Set(['version', 'current_user', 'session_user', 'current_database', 'current_schema', 'inet_server_addr', 'user']);
const FILE_FUNCTIONS = new Set(['pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'lo_import', 'lo_export', 'dblink', 'dblink_exec', 'dblink_connect']);
const SLEEPS = new Set(['pg_sleep', 'pg_sleep_for', 'pg_sleep_until']);
const DESTRUCTIVE = new Set(['DropStmt', 'TruncateStmt', 'GrantStmt', 'GrantRoleStmt', 'AlterRoleStmt', 'CreateRoleStmt', 'CopyStmt', 'DropRoleStmt', 'AlterTableStmt', 'DeleteStmt', 'UpdateStmt', 'InsertStmt', 'CreateFunctionStmt', 'DoStmt']);
const APP_STATEMENTS = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);
const SCONST = 261;

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
      case '=': return x === y;
      case '<>': case '!=': return x !== y;
      case '<': return x < y;
      case '>': return x > y;
      case '<=': return x <= y;
      case '>=': return x >= y;
      default: return false;
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
  return some(stmt, (type, f) => type === 'BoolExpr' && f['boolop'] === 'OR_EXPR' && list(f['args']).some((arg) =>
    alwaysTrue(arg) || some(arg, (t, g) => t === 'A_Expr' && constant(g['lexpr']) !== undefined && constant(g['rexpr']) !== undefined && alwaysTrue({ A_Expr: g })))) ||
    conditions(stmt).some(alwaysTrue);
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
  return some(stmt, (type, f) => {
    if (type !== 'SelectStmt' || f['op'] !== 'SETOP_UNION') return false;
    const right = f['rarg'];
    if (readsSystem(right)) return true;
    const targets = list(fieldsOf(right)['targetList']);
    const nulls = targets.filter((t) => {
      const v = fieldsOf(t)['val'];
      return nodeType(v) === 'A_Const' && fieldsOf(v)['isnull'] === true;
    }).length;
    return targets.length >= 2 && nulls >= targets.length - 1;
  });
}

function stacked(statements: readonly RawStatement[]): boolean {
  if (statements.length < 2) return false;
  const first = nodeType(statements[0]!.stmt) ?? '';
  if (!APP_STATEMENTS.has(first)) return false;
  return statements.slice(1).some((s) => {
    const t = nodeType(s.stmt) ?? '';
    return DESTRUCTIVE.has(t) && t !== first;
  });
}

function timeBased(stmt: unknown): boolean {
  const sleeps = some(stmt, (type, f) => type === 'FuncCall' && SLEEPS.has(funcName(f)));
  if (!sleeps) return false;
  // `SELECT pg_sleep(n)` on its own is a deliberate pause, not an injection.
  const f = fieldsOf(stmt);
  const plain = nodeType(stmt) === 'SelectStmt' && !f['fromClause'] && !f['whereClause'] && f['op'] !== 'SETOP_UNION' &&
    list(f['targetList']).every((t) => {
      const v = fieldsOf(t)['val'];
      return nodeType(v) === 'FuncCall' && SLEEPS.has(funcName(fieldsOf(v)));
    });
  return !plain;
}

function errorCast(stmt: unknown): boolean {
  return some(stmt, (type, f) => {
    if (type !== 'TypeCast') return false;
    const target = names(fieldsOf(f['typeName'])['names']).at(-1)?.toLowerCase() ?? '';
    if (!/^(int[248]?|integer|numeric|bigint|smallint|float[48]|real|double)$/.test(target)) return false;
    return readsSystem(f['arg']);
  }) || some(stmt, (type, f) => type === 'FuncCall' && ['query_to_xml', 'xmlparse', 'database_to_xml'].includes(funcName(f)));
}

function fileAccess(stmt: unknown): boolean {
  return some(stmt, (type, f) => (type === 'FuncCall' && FILE_FUNCTIONS.has(funcName(f))) || (type === 'CopyStmt' && f['is_program'] === true));
}

function catalogSecrets(stmt: unknown): boolean {
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
    if (/'\s*(and|or)\b/i.test(rest)) return true;
  }
  return false;
}

export interface ShapeVerdict {
  readonly shapes: readonly SqlShape[];
  readonly detail: string;
}

const DETAILS: Record<SqlShape, string> = {
  'tautology': 'a condition with an always-true OR branch (such as OR 1=1)',
  'union-extraction': 'a UNION that reads system catalogs or probes columns with NULLs',
  'stacked-statements': 'a destructive statement stacked after an application statement',
  'comment-truncation': 'a comment right after a string literal that cuts off the rest of the statement',
  'time-based': 'a sleep inside a condition (time-based blind injection)',
  'error-based-cast': 'a cast of system information to a number (error-based extraction)',
  'file-access': 'access to server files or programs',
  'catalog-access': 'a read of password or user-mapping catalogs',
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
    if (errorCast(s.stmt)) shapes.add('error-based-cast');
    if (fileAccess(s.stmt)) shapes.add('file-access');
    if (catalogSecrets(s.stmt)) shapes.add('catalog-access');
  }
  if (commentTruncation(sql)) shapes.add('comment-truncation');
  const list2 = [...shapes];
  return { shapes: list2, detail: list2.map((s) => DETAILS[s]).join('; ') };
}
