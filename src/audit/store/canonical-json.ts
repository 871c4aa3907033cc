// Canonical JSON: RFC 8785 (JSON Canonicalization Scheme) for the values JSON.stringify accepts.
// Object keys are sorted by UTF-16 code units, no whitespace, strings and numbers serialized as
// ECMAScript JSON.stringify does (which is what RFC 8785 specifies). Values JSON.stringify drops
// are dropped the same way (undefined/function/symbol properties omitted, in arrays `null`;
// NaN/Infinity become `null`; toJSON() is honoured), so canonicalJson(JSON.parse(canonicalJson(x)))
// === canonicalJson(x) for every input. bigint, cycles and nesting deeper than maxDepth throw.

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export class CanonicalJsonError extends TypeError {
  override readonly name = 'CanonicalJsonError';
}

export function canonicalJson(value: unknown, maxDepth = 64): string {
  const out = encode(value, maxDepth);
  if (out === undefined) throw new CanonicalJsonError(`cannot encode a ${typeof value} as JSON`);
  return out;
}

// Keys of printable ASCII without '"' or '\\' need no escaping (most keys).
const PLAIN_KEY = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function encode(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new CanonicalJsonError('bigint is not JSON');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return encode((value as { toJSON: () => unknown }).toJSON(), depth);
  // A cycle runs into the depth bound.
  if (depth <= 0) throw new CanonicalJsonError('nested too deep (or cyclic)');
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + (encode(value[i], depth - 1) ?? 'null');
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const v = encode(record[key], depth - 1);
    if (v === undefined) continue;
    out += `${first ? '' : ','}${PLAIN_KEY.test(key) ? `"${key}"` : JSON.stringify(key)}:${v}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * canonicalJson of a value JSON.parse returned (plain objects and arrays of strings, finite
 * numbers, booleans and null), giving the same text faster: the objects are rebuilt with their
 * keys in canonical order and serialized by one native JSON.stringify. Objects whose key order
 * V8 would not keep (array-index-like keys, which it lists first, and `__proto__`) take the
 * general path.
 */
export function canonicalJsonOfParsed(value: unknown, maxDepth = 64): string {
  const sorted = sortKeys(value, maxDepth);
  return sorted === GENERAL ? canonicalJson(value, maxDepth) : JSON.stringify(sorted);
}

const GENERAL = Symbol('general');

function sortKeys(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth <= 0) throw new CanonicalJsonError('nested too deep (or cyclic)');
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = sortKeys(value[i], depth - 1);
      if (v === GENERAL) return GENERAL;
      out[i] = v;
    }
    return out;
  }
  const record = value as Record<string, unknown>;
  const keys = sortedKeys(Object.keys(record));
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const c = key.charCodeAt(0);
    if ((c >= 0x30 && c <= 0x39) || key === '__proto__') return GENERAL;
    const v = sortKeys(record[key], depth - 1);
    if (v === GENERAL) return GENERAL;
    out[key] = v;
  }
  return out;
}

/** Objects of one shape come by the thousand: their sorted key list, by first key, is reused. */
const sortedByFirst = new Map<string, { readonly keys: readonly string[]; readonly sorted: string[] }>();
const MAX_SHAPES = 1024;

function sortedKeys(keys: string[]): string[] {
  if (keys.length < 2) return keys;
  const hit = sortedByFirst.get(keys[0]!);
  if (hit !== undefined && hit.keys.length === keys.length) {
    let same = true;
    for (let i = 1; i < keys.length; i++) {
      if (hit.keys[i] !== keys[i]) {
        same = false;
        break;
      }
    }
    if (same) return hit.sorted;
  }
  const sorted = [...keys].sort();
  if (sortedByFirst.size < MAX_SHAPES || hit !== undefined) sortedByFirst.set(keys[0]!, { keys, sorted });
  return sorted;
}

/**
 * canonicalJson of an event as the caller built it, or undefined when this fast path cannot vouch
 * for the result (the caller then falls back to JSON.stringify and the writer canonicalizes).
 * Only plain data is taken: objects whose prototype is Object.prototype or null and without
 * toJSON, arrays, strings, numbers, booleans, null, and the values JSON.stringify drops or nulls
 * (undefined, functions, symbols, non-finite numbers: dropped or nulled the same way by both).
 * Objects are copied with their keys in canonical order (objects whose keys are in order already
 * are used as they are) and the copy is serialized by one native JSON.stringify, which is then
 * the canonical text: the same keys in RFC 8785 order, strings and numbers as JSON.stringify
 * writes them. Array-index-like keys, `__proto__`, nesting deeper than maxDepth (or a cycle) give
 * undefined. A bigint makes JSON.stringify throw its TypeError, as it would on the event itself.
 */
export function canonicalJsonOfPlain(value: object, maxDepth = 64): string | undefined {
  const sorted = plainSorted(value, maxDepth);
  return sorted === GENERAL ? undefined : (JSON.stringify(sorted) as string | undefined);
}

const objectPrototype = Object.prototype;

function plainSorted(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth <= 0) return GENERAL;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== 'object' || item === null) continue;
      const v = plainSorted(item, depth - 1);
      if (v === GENERAL) return GENERAL;
      if (v !== item) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== objectPrototype && proto !== null) return GENERAL;
  const record = value as Record<string, unknown>;
  if (typeof record.toJSON === 'function') return GENERAL;
  const shape = plainShape(Object.keys(record));
  if (shape === null) return GENERAL;
  const keys = shape.sorted;
  let out: Record<string, unknown> | null = shape.inOrder ? null : {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const item = record[key];
    let v = item;
    if (typeof item === 'object' && item !== null) {
      v = plainSorted(item, depth - 1);
      if (v === GENERAL) return GENERAL;
    }
    if (out !== null) out[key] = v;
    else if (v !== item) {
      // In order so far, but a nested value changed: copy from here on.
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]!] = record[keys[j]!];
      out[key] = v;
    }
  }
  return out ?? record;
}

interface PlainShape {
  readonly keys: readonly string[];
  readonly sorted: readonly string[];
  /** The keys are in canonical order already. */
  readonly inOrder: boolean;
}

/** By first key, as sortedKeys does; null for keys V8 would not keep in insertion order. */
const plainByFirst = new Map<string, PlainShape | null>();

function plainShape(keys: string[]): PlainShape | null {
  if (keys.length === 0) return EMPTY_SHAPE;
  const first = keys[0]!;
  const hit = plainByFirst.get(first);
  if (hit !== undefined && hit !== null && hit.keys.length === keys.length) {
    let same = true;
    for (let i = 1; i < keys.length; i++) {
      if (hit.keys[i] !== keys[i]) {
        same = false;
        break;
      }
    }
    if (same) return hit;
  }
  let shape: PlainShape | null;
  if (keys.some((key) => isIndexLike(key) || key === '__proto__')) shape = null;
  else {
    const sorted = [...keys].sort();
    shape = { keys, sorted, inOrder: sorted.every((k, i) => k === keys[i]) };
  }
  if (shape !== null && (plainByFirst.size < MAX_SHAPES || plainByFirst.has(first))) plainByFirst.set(first, shape);
  return shape;
}

const EMPTY_SHAPE: PlainShape = { keys: [], sorted: [], inOrder: true };

/** Keys whose first character is a digit: V8 lists array-index keys first, whatever the order. */
function isIndexLike(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 0x30 && c <= 0x39;
}

/**
 * A producer that builds many events of one kind may write each one's canonical JSON as it builds
 * it (audit/statement-json.ts) and hand it over with the event: the store takes the text as is
 * when it is given that very object. One slot, no property on the event: events are recorded
 * synchronously as they are published, and any other object falls back to serialization.
 */
let prebuiltEvent: object | null = null;
let prebuiltText = '';

/** Hands over the event's canonical JSON with it; returns the event. */
export function withCanonicalText<T extends object>(event: T, text: string): T {
  prebuiltEvent = event;
  prebuiltText = text;
  return event;
}

/** The canonical JSON handed over with this very event, or undefined. */
export function canonicalTextOf(event: object): string | undefined {
  return event === prebuiltEvent ? prebuiltText : undefined;
}
