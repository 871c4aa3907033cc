// Injection shapes that carry over from one payload to the next, on the parse tree: a predicate
// that does not depend on the row (a constant compared with a constant, or with a value taken from
// the system: current_user, version(), a subquery on pg_* or information_schema) inside an
// application's condition; strings built with chr() or || around a subquery or a system value;
// division by zero as an error oracle. Catalog queries (psql's, monitoring tools') read the system
// catalogs in their FROM and compare catalog columns: they are not probes.
import { fieldsOf, list, names, nodeType, some } from '../../sql/nodes.js';

const SYSTEM_FUNCTIONS = new Set([
  'version',
  'current_user',
  'session_user',
  'current_database',
  'current_schema',
  'current_schemas',
  'inet_server_addr',
  'inet_server_port',
  'inet_client_addr',
  'user',
  'current_setting',
  'pg_backend_pid',
  'current_catalog',
  'current_query',
  'pg_postmaster_start_time',
  'txid_current',
  'pg_is_in_recovery',
]);
const AGGREGATES = new Set([
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'bool_and',
  'bool_or',
  'every',
  'array_agg',
  'string_agg',
  'json_agg',
  'jsonb_agg',
  'row_number',
  'rank',
  'dense_rank',
]);
const SLEEPS = new Set(['pg_sleep', 'pg_sleep_for', 'pg_sleep_until']);
const COMPARISONS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '~~', '~~*', '!~~', '!~~*', '~', '~*']);
/** chr() codes that applications use to build text (tab, newline, carriage return, space). */
const LAYOUT_CODES = new Set([9, 10, 13, 32]);

const funcName = (f: Record<string, unknown>) => names(f['funcname']).at(-1)?.toLowerCase() ?? '';

export function isSystemRelation(f: Record<string, unknown>): boolean {
  const rel = String(f['relname'] ?? '').toLowerCase();
  const schema = String(f['schemaname'] ?? '').toLowerCase();
  return rel.startsWith('pg_') || schema === 'information_schema' || schema === 'pg_catalog';
}

/** A value of the system rather than of the application's data. */
function systemValue(type: string, f: Record<string, unknown>): boolean {
  if (type === 'SQLValueFunction') return true;
  if (type === 'FuncCall') return SYSTEM_FUNCTIONS.has(funcName(f)) || SLEEPS.has(funcName(f));
  if (type === 'RangeVar') return isSystemRelation(f);
  return false;
}

/** The statement reads system catalogs in its own FROM: a catalog query (psql, admin tools). */
export function catalogQuery(stmt: unknown): boolean {
  return list(fieldsOf(stmt)['fromClause']).some(systemFromItem);
}

/** A FROM item that is (or joins) a system relation; subqueries by their own FROM. */
function systemFromItem(item: unknown): boolean {
  const type = nodeType(item);
  const f = fieldsOf(item);
  if (type === 'RangeVar' || (type === undefined && 'relname' in f)) return isSystemRelation(f);
  if (type === 'JoinExpr') return systemFromItem(f['larg']) || systemFromItem(f['rarg']);
  if (type === 'RangeSubselect') return catalogQuery(f['subquery']);
  return false;
}

function plainConstant(node: unknown): boolean {
  const type = nodeType(node);
  if (type === 'TypeCast') return plainConstant(fieldsOf(node)['arg']);
  return type === 'A_Const';
}

function constantValue(node: unknown): string | number | boolean | null | undefined {
  const type = nodeType(node);
  const f = fieldsOf(node);
  if (type === 'TypeCast') return constantValue(f['arg']);
  if (type !== 'A_Const') return undefined;
  if ('boolval' in f) return Boolean(fieldsOf(f['boolval'])['boolval']);
  if ('ival' in f) return Number(fieldsOf(f['ival'])['ival'] ?? 0);
  if ('fval' in f) return Number(fieldsOf(f['fval'])['fval']);
  if ('sval' in f) return String(fieldsOf(f['sval'])['sval'] ?? '');
  return null;
}

/** `true`, `NOT false`. */
function constTrue(a: unknown): boolean {
  return (
    constantValue(a) === true || (nodeType(a) === 'BoolExpr' && fieldsOf(a)['boolop'] === 'NOT_EXPR' && constantValue(list(fieldsOf(a)['args'])[0]) === false)
  );
}

/** A subquery that does not depend on the outer row: it reads the system, or has no condition on
 * columns (so it cannot be correlated). */
function uncorrelated(subselect: unknown): boolean {
  if (some(subselect, systemValue)) return true;
  const f = fieldsOf(subselect);
  if (f['op'] && f['op'] !== 'SETOP_NONE') return uncorrelated(f['larg']) && uncorrelated(f['rarg']);
  return !some(f['whereClause'], (t) => t === 'ColumnRef') && !some(f['havingClause'], (t) => t === 'ColumnRef');
}

/** True when the expression's value is the same for every row: no column of the outer query. */
export function rowIndependent(node: unknown): boolean {
  let ok = true;
  const visit = (n: unknown): void => {
    if (!ok || n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) visit(x);
      return;
    }
    const type = nodeType(n);
    const f = fieldsOf(n);
    // Columns, and aggregates or window functions (count(*) has no column but counts rows).
    if (type === 'ColumnRef' || (type === 'FuncCall' && (f['agg_star'] || f['over'] || AGGREGATES.has(funcName(f))))) {
      ok = false;
      return;
    }
    if (type === 'SubLink') {
      if (!uncorrelated(f['subselect'])) ok = false;
      visit(f['testexpr']);
      return;
    }
    for (const key in f) visit(f[key]);
  };
  visit(node);
  return ok;
}

/** An expression that is more than a literal: a subquery, a function, system values. */
function computed(node: unknown): boolean {
  return some(node, (type) => type === 'SubLink' || type === 'FuncCall' || type === 'SQLValueFunction' || type === 'CaseExpr');
}

/** `1=1` first in a WHERE, or `1=0`/`1<>1` anywhere outside an OR: what query builders write. */
function builderConstant(node: unknown, first: boolean): boolean {
  const f = fieldsOf(node);
  if (nodeType(node) === 'A_Const') {
    const v = constantValue(node);
    return (first && (v === true || v === 1)) || v === false || v === 0;
  }
  const a = constantValue(f['lexpr']);
  const b = constantValue(f['rexpr']);
  const small = (v: unknown) => v === 0 || v === 1;
  if (!small(a) || !small(b)) return false;
  const op = names(f['name'])[0];
  const holds = op === '=' ? a === b : op === '<>' || op === '!=' ? a !== b : null;
  if (holds === null) return false;
  return !holds || first;
}

/** A row-independent predicate inside an application's condition. */
function probeIn(cond: unknown, constantsOnly = false): boolean {
  let found = false;
  const visit = (n: unknown, inOr: boolean, first: boolean): void => {
    if (found || n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) visit(x, inOr, false);
      return;
    }
    const type = nodeType(n);
    const f = fieldsOf(n);
    if (type === 'BoolExpr') {
      const args = list(f['args']);
      const or = f['boolop'] === 'OR_EXPR';
      // `OR true`, `OR NOT false`.
      // (psql writes `(true AND ...) OR (true AND ...)` in catalog queries: not there.)
      if (
        or &&
        !constantsOnly &&
        args.some((a) => constTrue(a) || (nodeType(a) === 'BoolExpr' && fieldsOf(a)['boolop'] === 'AND_EXPR' && list(fieldsOf(a)['args']).some(constTrue)))
      ) {
        found = true;
        return;
      }
      args.forEach((a, i) => {
        visit(a, inOr || or, first && !or && i === 0);
      });
      return;
    }
    if (type === 'A_Expr') {
      const kind = f['kind'];
      const op = names(f['name'])[0] ?? '';
      const comparison =
        (kind === 'AEXPR_OP' && COMPARISONS.has(op)) ||
        kind === 'AEXPR_LIKE' ||
        kind === 'AEXPR_ILIKE' ||
        kind === 'AEXPR_BETWEEN' ||
        kind === 'AEXPR_NOT_BETWEEN' ||
        kind === 'AEXPR_IN' ||
        kind === 'AEXPR_DISTINCT' ||
        kind === 'AEXPR_NOT_DISTINCT';
      if (comparison && rowIndependent(f['lexpr']) && rowIndependent(f['rexpr'])) {
        const constants =
          plainConstant(f['lexpr']) &&
          (plainConstant(f['rexpr']) || (nodeType(f['rexpr']) === 'List' && list(fieldsOf(f['rexpr'])['items']).every(plainConstant)));
        if ((!constants && !constantsOnly) || (constants && (inOr || !builderConstant(n, first)))) {
          found = true;
          return;
        }
      }
    }
    if (constantsOnly) {
      for (const key in f) visit(f[key], inOr, false);
      return;
    }
    if (type === 'NullTest' && computed(f['arg']) && rowIndependent(f['arg'])) {
      found = true;
      return;
    }
    if (type === 'SubLink' && f['subLinkType'] === 'EXISTS_SUBLINK' && some(f['subselect'], systemValue)) {
      found = true;
      return;
    }
    for (const key in f) visit(f[key], inOr, false);
  };
  visit(cond, false, true);
  return found;
}

/** The conditions of an application statement (not of a catalog query), at any depth. */
export function booleanProbe(stmt: unknown): boolean {
  let found = false;
  const visit = (n: unknown, catalog: boolean, inCondition = false): void => {
    if (found || n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      for (const x of n) visit(x, catalog);
      return;
    }
    const type = nodeType(n);
    const f = fieldsOf(n);
    let here = catalog;
    if (type === 'SelectStmt' || type === 'UpdateStmt' || type === 'DeleteStmt') here = catalog || catalogQuery(n);
    {
      // In a catalog query (its FROM reads pg_*), only constants compared with constants: catalog
      // queries compare system values with catalog columns all the time.
      for (const key of ['whereClause', 'havingClause', 'quals']) {
        if (f[key] && probeIn(f[key], here)) {
          found = true;
          return;
        }
      }
      // AND/OR where a value belongs (VALUES, SET, LIMIT, a function argument): a literal slot
      // that grew a condition.
      if (!inCondition && type === 'BoolExpr' && probeIn({ BoolExpr: { ...f, args: [null, ...list(f['args'])] } }, here)) {
        found = true;
        return;
      }
    }
    for (const key in f) visit(f[key], here, inCondition || key === 'whereClause' || key === 'havingClause' || key === 'quals');
  };
  visit(stmt, false);
  return found;
}

function chrCode(node: unknown): number | undefined {
  if (nodeType(node) !== 'FuncCall') return undefined;
  const f = fieldsOf(node);
  if (funcName(f) !== 'chr') return undefined;
  const v = constantValue(list(f['args'])[0]);
  return typeof v === 'number' ? v : undefined;
}

/** The operands of a chain of `||`. */
function concatOperands(node: unknown, out: unknown[]): void {
  const f = fieldsOf(node);
  if (nodeType(node) === 'A_Expr' && f['kind'] === 'AEXPR_OP' && names(f['name'])[0] === '||') {
    concatOperands(f['lexpr'], out);
    concatOperands(f['rexpr'], out);
  } else {
    out.push(node);
  }
}

/** `'' || (SELECT ...) || ''`, `CHR(65)||CHR(66)`, `'' || current_user || ''` in an application
 * statement: text assembled around a subquery or a system value, or from character codes. */
export function stringBuilding(stmt: unknown): boolean {
  if (catalogQuery(stmt)) return false;
  return some(stmt, (type, f) => {
    if (type !== 'A_Expr' || f['kind'] !== 'AEXPR_OP' || names(f['name'])[0] !== '||') return false;
    const ops: unknown[] = [];
    concatOperands({ A_Expr: f }, ops);
    const chrs = ops.map(chrCode).filter((c) => c !== undefined && !LAYOUT_CODES.has(c)).length;
    if (chrs >= 2) return true;
    return ops.some((o) => {
      const t = nodeType(o);
      if (t === 'SubLink') return fieldsOf(o)['subLinkType'] === 'EXPR_SUBLINK' && uncorrelated(fieldsOf(o)['subselect']);
      if (t === 'SQLValueFunction') return true;
      if (t === 'FuncCall') return SYSTEM_FUNCTIONS.has(funcName(fieldsOf(o))) || SLEEPS.has(funcName(fieldsOf(o)));
      return false;
    });
  });
}

/** Division by zero, or by a row-independent subquery: an error oracle. */
export function errorDivision(stmt: unknown): boolean {
  return some(stmt, (type, f) => {
    if (type !== 'A_Expr' || f['kind'] !== 'AEXPR_OP' || names(f['name'])[0] !== '/') return false;
    const r = f['rexpr'];
    if (constantValue(r) === 0) return true;
    return nodeType(r) === 'SubLink' && rowIndependent(r) && rowIndependent(f['lexpr']);
  });
}

/** A cast to a number of something built from a subquery, a system value, chr() or `||`. */
export function errorCast(stmt: unknown): boolean {
  return (
    some(stmt, (type, f) => {
      if (type !== 'TypeCast') return false;
      const target = names(fieldsOf(f['typeName'])['names']).at(-1)?.toLowerCase() ?? '';
      if (!/^(int[248]?|integer|numeric|decimal|bigint|smallint|float[48]|real|double)$/.test(target)) return false;
      const arg = f['arg'];
      if (!rowIndependent(arg)) return false;
      return some(
        arg,
        (t, g) => t === 'SubLink' || systemValue(t, g) || (t === 'FuncCall' && funcName(g) === 'chr') || (t === 'A_Expr' && names(g['name'])[0] === '||'),
      );
    }) || some(stmt, (type, f) => type === 'FuncCall' && ['query_to_xml', 'xmlparse', 'database_to_xml', 'table_to_xml'].includes(funcName(f)))
  );
}

/** The node reads a system value, a sleep or a system relation. */
export function touchesSystem(node: unknown): boolean {
  return some(node, systemValue);
}

/** A UNION whose right branch probes the column count with consecutive numbers (1,2,3). */
export function unionNumbers(stmt: unknown): boolean {
  const numbered = (f: Record<string, unknown>): boolean => {
    if (f['op'] !== 'SETOP_UNION') return false;
    if (numbered(fieldsOf(f['larg']))) return true;
    const r = fieldsOf(f['rarg']);
    if (r['fromClause']) return false;
    const values = list(r['targetList']).map((t) => constantValue(fieldsOf(t)['val']));
    return values.length >= 2 && values.every((v, i) => v === i + 1);
  };
  return some(stmt, (type, f) => type === 'SelectStmt' && numbered(f));
}
