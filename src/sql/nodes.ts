// Reading libpg-query's JSON parse trees. A node is either wrapped, {"RangeVar": {...}}, or (in
// fields of a fixed type, such as InsertStmt.relation) bare; bare nodes we care about are
// recognised by their fields. Defaults are omitted from the JSON: false, 0, empty lists.

import type { Fields } from './parser.js';

/** The type of a wrapped node ({"SelectStmt": {...}} gives "SelectStmt"). */
export function nodeType(node: unknown): string | undefined {
  if (!isObject(node)) return undefined;
  let type: string | undefined;
  for (const key in node) {
    if (type !== undefined) return undefined; // more than one key: not a wrapper
    type = key;
  }
  if (type === undefined) return undefined;
  const first = type.charCodeAt(0);
  return first >= 0x41 && first <= 0x5a && isObject(node[type]) ? type : undefined;
}

/** The fields of a wrapped or bare node. */
export function fieldsOf(node: unknown): Fields {
  if (!isObject(node)) return {};
  const type = nodeType(node);
  return type !== undefined ? (node[type] as Fields) : node;
}

export function isObject(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function list(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

export function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The svals of a list of String nodes, e.g. a qualified name. */
export function names(v: unknown): string[] {
  const out: string[] = [];
  for (const item of list(v)) {
    const s = fieldsOf(item)['sval'];
    if (typeof s === 'string') out.push(s);
  }
  return out;
}

/** The type of a bare node, recognised by its fields. */
function bareType(o: Fields): string | undefined {
  if ('relname' in o) return 'RangeVar';
  if ('roletype' in o) return 'RoleSpec';
  if ('funcformat' in o && 'funcname' in o) return 'FuncCall';
  if ('objname' in o) return 'ObjectWithArgs';
  return undefined;
}

/** Calls `visit` for every node below (and including) `node`, parents first. */
export function walk(node: unknown, visit: (type: string, fields: Fields) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, visit);
    return;
  }
  if (!isObject(node)) return;
  const type = nodeType(node);
  const fields = type !== undefined ? (node[type] as Fields) : node;
  const kind = type ?? bareType(fields);
  if (kind !== undefined) visit(kind, fields);
  for (const key in fields) {
    const child = fields[key];
    if (typeof child === 'object' && child !== null) walk(child, visit);
  }
}

/** True when `visit` returns true for some node below `node`. */
export function some(node: unknown, test: (type: string, fields: Fields) => boolean): boolean {
  let found = false;
  walk(node, (type, fields) => {
    if (!found && test(type, fields)) found = true;
  });
  return found;
}
