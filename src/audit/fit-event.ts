// An event the audit store refused as too large, cut down so it can be written: every string
// longer than `textBytes` keeps its first `textBytes` (UTF-8) with its whole length and SHA-256,
// every array longer than MAX_ITEMS keeps its first items with the count. A statement's text
// (`text` of `statement`, `statement` of `statement.pgaudit`) gets the same `truncated`,
// `textLength`, `textSha256` fields the gateway sets itself; any other cut field is listed in
// `cutFields` (path -> { length, sha256 } or { items }). Nothing is dropped without saying so.
import { createHash } from 'node:crypto';
import { cutUtf8 } from './tap/statement-event.js';

/** Items an array keeps when an event is cut down. */
const MAX_ITEMS = 256;
const MAX_DEPTH = 32;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

type Cut = { length: number; sha256: string } | { items: number };

export function fitEvent(event: object, textBytes: number): Record<string, unknown> {
  const cuts: Record<string, Cut> = {};
  const out = shrink(event as Json, '', textBytes, cuts, 0) as Record<string, Json>;
  const textField = out['type'] === 'statement' ? 'text' : out['type'] === 'statement.pgaudit' ? 'statement' : null;
  if (textField !== null) {
    const cut = cuts[textField];
    if (cut !== undefined && 'length' in cut) {
      delete cuts[textField];
      // A text the gateway already cut keeps the measure of the whole it computed.
      if (out['textLength'] === undefined) {
        out['textLength'] = cut.length;
        out['textSha256'] = cut.sha256;
      }
      out['truncated'] = true;
    }
  }
  if (Object.keys(cuts).length > 0) out['cutFields'] = cuts as unknown as Json;
  return out;
}

function shrink(value: Json, path: string, textBytes: number, cuts: Record<string, Cut>, depth: number): Json {
  if (typeof value === 'string') {
    if (value.length <= textBytes / 3 || Buffer.byteLength(value) <= textBytes) return value;
    cuts[path] = { length: Buffer.byteLength(value), sha256: createHash('sha256').update(value).digest('hex') };
    return cutUtf8(value, textBytes);
  }
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    const items = value.length > MAX_ITEMS ? value.slice(0, MAX_ITEMS) : value;
    if (items !== value) cuts[path] = { items: value.length };
    return items.map((v, i) => shrink(v, `${path}[${i}]`, textBytes, cuts, depth + 1));
  }
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(value)) out[k] = shrink(v, path === '' ? k : `${path}.${k}`, textBytes, cuts, depth + 1);
  return out;
}
