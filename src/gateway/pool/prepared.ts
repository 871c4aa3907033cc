// Named prepared statements in transaction mode, as PgBouncer 1.21+ does them: a client's
// statement is sent to the server under a name of the gateway's own, derived from its text and
// parameter types, so any server connection that has it prepared can serve any client that
// prepared the same statement. The records are shared by every session of the process (one
// buffer for a statement a hundred clients prepare) and counted, so the last client to forget a
// statement frees it.
import { createHash } from 'node:crypto';

/** One statement as the server gets it. */
export interface Statement {
  /** The gateway's name: `pgw_` and a hash of the text and parameter types. */
  readonly server: string;
  /** The whole Parse message under the server name, built once. */
  readonly parse: Buffer;
  refs: number;
}

const registry = new Map<string, Statement>();

/** Statements known to the process (for tests). */
export function registeredStatements(): number {
  return registry.size;
}

/** The statement of a Parse body whose name ends at `nameEnd` (its NUL), shared and counted. */
export function statementOf(body: Buffer, start: number, nameEnd: number, end: number): Statement {
  // The rest of the body, text then parameter types, is the statement's identity.
  const server = `pgw_${createHash('sha256')
    .update(body.subarray(nameEnd + 1, end))
    .digest('hex')
    .slice(0, 32)}`;
  let s = registry.get(server);
  if (s === undefined) {
    s = { server, parse: namedMessage(0x50, body, start, start, nameEnd, end, server), refs: 0 };
    registry.set(server, s);
  }
  s.refs++;
  return s;
}

export function retain(s: Statement): void {
  if (s.refs++ === 0) registry.set(s.server, s);
}

export function release(s: Statement): void {
  if (--s.refs === 0 && registry.get(s.server) === s) registry.delete(s.server);
}

/**
 * A message of type `type` whose body is buf[start, end) with the name at [nameStart, nameEnd)
 * (nameEnd is its NUL) replaced by `name`. One allocation, the rest of the body copied once.
 */
export function namedMessage(type: number, buf: Buffer, start: number, nameStart: number, nameEnd: number, end: number, name: string): Buffer {
  const nameBytes = Buffer.byteLength(name);
  const length = 4 + (nameStart - start) + nameBytes + (end - nameEnd);
  const out = Buffer.allocUnsafe(1 + length);
  out[0] = type;
  out.writeInt32BE(length, 1);
  let at = 5 + buf.copy(out, 5, start, nameStart);
  at += out.write(name, at, 'utf8');
  buf.copy(out, at, nameEnd, end);
  return out;
}

/** Close('S', name), the gateway evicting one of its statements from a server connection. */
export function closeStatement(name: string): Buffer {
  return namedMessage(0x43, Buffer.from([0x53, 0]), 0, 1, 1, 2, name);
}

export const PARSE_COMPLETE = Buffer.from([0x31, 0, 0, 0, 4]);
export const CLOSE_COMPLETE = Buffer.from([0x33, 0, 0, 0, 4]);

/** The offset of the NUL ending the string at `at`, or -1 when it is not inside [at, end). */
export function nulAt(buf: Buffer, at: number, end: number): number {
  const i = buf.indexOf(0, at);
  return i < 0 || i >= end ? -1 : i;
}

/**
 * Whether the first keyword of the SQL text in buf[start, end) is `word` (upper case ASCII):
 * leading white space and comments are skipped; nothing is parsed.
 */
export function firstKeywordIs(buf: Buffer, start: number, end: number, word: string): boolean {
  let i = start;
  while (i < end) {
    const c = buf[i]!;
    if (c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x28) i++;
    else if (c === 0x2d && buf[i + 1] === 0x2d) {
      const nl = buf.indexOf(0x0a, i);
      i = nl < 0 || nl >= end ? end : nl + 1;
    } else if (c === 0x2f && buf[i + 1] === 0x2a) {
      // Block comments nest in PostgreSQL.
      let depth = 1;
      i += 2;
      while (i < end && depth > 0) {
        if (buf[i] === 0x2a && buf[i + 1] === 0x2f) {
          depth--;
          i += 2;
        } else if (buf[i] === 0x2f && buf[i + 1] === 0x2a) {
          depth++;
          i += 2;
        } else i++;
      }
    } else break;
  }
  if (end - i < word.length) return false;
  for (let k = 0; k < word.length; k++) {
    if ((buf[i + k]! & 0xdf) !== word.charCodeAt(k)) return false;
  }
  const next = i + word.length < end ? buf[i + word.length]! : 0;
  // An identifier character after the word makes it another word (LISTENER).
  return !((next >= 0x30 && next <= 0x39) || ((next & 0xdf) >= 0x41 && (next & 0xdf) <= 0x5a) || next === 0x5f || next === 0x24 || next >= 0x80);
}
