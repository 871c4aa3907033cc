// One audit record and its line in a segment file.
//
// hash = SHA-256 over the UTF-8 bytes of the canonical JSON (RFC 8785) of {event, prev, seq, time}:
//   {"event":<canonical event>,"prev":"<hex>","seq":<n>,"time":"<iso>"}
// The line is the record with its fields in this fixed order, then "\n":
//   {"seq":<n>,"time":"<iso>","prev":"<hex>","hash":"<hex>","event":<canonical event>}
// A line is valid only when it is byte for byte what formatRecordLine() gives for its parsed
// fields, so any changed byte shows, even one JSON would not notice (whitespace, key order).
import { sha256, sha256Hex } from './sha256.js';
import { canonicalJson, type JsonObject } from './canonical-json.js';

export interface AuditRecord<E extends JsonObject = JsonObject> {
  /** 1, 2, 3, ... without gaps over the life of the store. */
  readonly seq: number;
  /** When the store accepted the event: ISO 8601 UTC with milliseconds. */
  readonly time: string;
  /** Hash of the record before (64 zeros for seq 1), lowercase hex. */
  readonly prev: string;
  /** SHA-256 of the canonical (event, prev, seq, time), lowercase hex. */
  readonly hash: string;
  readonly event: E;
}

export const ZERO_HASH = '0'.repeat(64);
/** Deepest nesting of an event (the writer refuses deeper ones). */
export const MAX_DEPTH = 64;
const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export function recordHash(seq: number, time: string, prev: string, canonicalEvent: string): Buffer {
  return sha256(`{"event":${canonicalEvent},"prev":"${prev}","seq":${seq},"time":"${time}"}`);
}

/** recordHash as lowercase hex. */
export function recordHashHex(seq: number, time: string, prev: string, canonicalEvent: string): string {
  return sha256Hex(`{"event":${canonicalEvent},"prev":"${prev}","seq":${seq},"time":"${time}"}`);
}

export function formatRecordLine(seq: number, time: string, prev: string, hash: string, canonicalEvent: string): string {
  return `{"seq":${seq},"time":"${time}","prev":"${prev}","hash":"${hash}","event":${canonicalEvent}}\n`;
}

export type RecordLineProblem = 'bad-line' | 'hash-mismatch';

export type ParsedRecordLine =
  | { readonly ok: true; readonly record: AuditRecord; readonly hashBytes: Buffer }
  | { readonly ok: false; readonly problem: RecordLineProblem; readonly message: string; readonly seq?: number };

/** Parses and checks one line (without its "\n"): format, canonical form, and the record's own hash. */
export function parseRecordLine(line: string): ParsedRecordLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { ok: false, problem: 'bad-line', message: 'not JSON', seq: seqPrefix(line) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not a JSON object', line);
  const r = value as Record<string, unknown>;
  const { seq, time, prev, hash, event } = r;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) return bad('seq is not a positive integer', line);
  if (typeof time !== 'string' || !ISO_MS.test(time)) return bad('time is not ISO 8601 UTC with milliseconds', line);
  if (typeof prev !== 'string' || !HEX64.test(prev)) return bad('prev is not 64 lowercase hex digits', line);
  if (typeof hash !== 'string' || !HEX64.test(hash)) return bad('hash is not 64 lowercase hex digits', line);
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return bad('event is not a JSON object', line);
  const n = seq as number;
  let canonicalEvent: string;
  try {
    canonicalEvent = canonicalJson(event, MAX_DEPTH);
  } catch {
    return bad(`event is nested deeper than ${MAX_DEPTH}`, line);
  }
  if (`${formatRecordLine(n, time, prev, hash, canonicalEvent)}` !== `${line}\n`) {
    return { ok: false, problem: 'bad-line', message: 'line is not in canonical form', seq: n };
  }
  const computed = recordHash(n, time, prev, canonicalEvent);
  if (computed.toString('hex') !== hash) {
    return { ok: false, problem: 'hash-mismatch', message: 'record content does not match its hash', seq: n };
  }
  return { ok: true, record: { seq: n, time, prev, hash, event: event as JsonObject }, hashBytes: computed };
}

/** The seq of a line from its prefix alone, for lines too damaged to parse. */
export function seqPrefix(line: string): number | undefined {
  const m = /^\{"seq":(\d{1,15}),/.exec(line);
  return m ? Number(m[1]) : undefined;
}

function bad(message: string, line: string): ParsedRecordLine {
  return { ok: false, problem: 'bad-line', message, seq: seqPrefix(line) };
}
