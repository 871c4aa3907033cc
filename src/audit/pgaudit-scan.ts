// Reading the managed servers' pgAudit lines, in two steps so the reading and parsing can run off
// the platform's event loop (pgaudit-worker.ts) while the join to gateway sessions, which needs
// the gateway's session index, stays on it:
//   collectLines: new complete lines of every server's jsonlog files (an offset only ever moves
//     to the end of a complete line), with the backend pid and substatement id of each pgAudit
//     line read without a JSON parse;
//   finishLines: given the gateway sessions of those pids, the `statement.pgaudit` events to
//     publish. The gateway records the top-level statements of the sessions it relays itself;
//     from pgAudit only what it cannot see (statements inside functions and DO blocks) and the
//     statements of sessions that did not come through the gateway. Only those lines are parsed.
//     On a server with pgwarden_audit (`nestedOnly`), pgAudit logs nothing else in gateway
//     sessions but transaction control (which cannot be nested), dropped here; without it, a
//     gateway session's lines with substatement id 1 (the top-level statements) are dropped.
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { jsonlogTimeMs, parsePgAuditLine, redactPasswords, splitCsv } from './pgaudit-line.js';
import { readLongLine } from './pgaudit-long-line.js';
import type { FullText } from '../pgwire/observer/index.js';
import { cutUtf8, measure } from './tap/statement-event.js';
import type { ServerStatementAudited } from '../events/types.js';

/** Most bytes read from one file per scan; a longer line is read to its end in pieces (pgaudit-long-line.ts). */
export const MAX_READ_PER_SCAN = 4 * 1024 * 1024;
/** Bytes of statement text (and of parameter) an event keeps; a longer statement is cut, with its length and SHA-256. */
export const MAX_TEXT_BYTES = 8 * 1024;

export interface ServerLogs {
  readonly name: string;
  readonly dir: string;
  /** pgAudit logs only nested statements in gateway sessions (ext/pgwarden_audit). */
  readonly nestedOnly?: boolean;
}

/** One pgAudit line not yet joined. */
export interface CollectedLine {
  readonly server: string;
  readonly pid: number;
  readonly substatementId: number;
  readonly nestedOnly: boolean;
  /** The line's bytes (a view of what was read): decoded only when it is published. */
  readonly bytes: Buffer;
  /** A line longer than one read: `bytes` is its short form, this the whole statement's measure. */
  readonly full?: FullText;
}

export interface Collected {
  readonly lines: CollectedLine[];
  /** New offsets of the files read. */
  readonly offsets: Record<string, number>;
  /** Distinct sessionKey()s of the lines. */
  readonly keys: string[];
  /** Every file was read to its end (or to `notAfter`): no read stopped at `maxRead`. */
  readonly complete: boolean;
}

/** What the gateway knows of a server session. */
export interface JoinedSession {
  readonly connId: string;
  readonly applicationName: string | undefined;
}

export type PgAuditEvent = ServerStatementAudited;

export const sessionKey = (server: string, pid: number): string => `${server}\0${pid}`;

/**
 * `notAfter` (ms): a pgAudit line logged later is left for a later scan, with every line after it
 * (its file's offset stops before it; the server's later files wait). The session index of
 * another gateway process reaches this one a moment after the lends it records: a line newer than
 * that could be joined to the session that held its backend before.
 */
export function collectLines(
  servers: readonly ServerLogs[],
  offsets: Readonly<Record<string, number>>,
  maxRead = MAX_READ_PER_SCAN,
  notAfter = Number.POSITIVE_INFINITY,
): Collected {
  const lines: CollectedLine[] = [];
  const moved: Record<string, number> = {};
  const keys = new Set<string>();
  let complete = true;
  for (const server of servers) {
    if (!existsSync(server.dir)) continue;
    for (const name of readdirSync(server.dir)
      .filter((n) => n.endsWith('.json'))
      .sort()) {
      const read = collectFile(server, path.join(server.dir, name), offsets, maxRead, notAfter, { lines, moved, keys });
      if (read === 'partly') complete = false;
      if (read === 'held') break;
    }
  }
  return { lines, offsets: moved, keys: [...keys], complete };
}

/** One file's new lines into `into`; 'held' when a line newer than `notAfter` stopped it, 'partly'
 * when `maxRead` did (more is left for the next scan). */
function collectFile(
  server: ServerLogs,
  file: string,
  offsets: Readonly<Record<string, number>>,
  maxRead: number,
  notAfter: number,
  into: { lines: CollectedLine[]; moved: Record<string, number>; keys: Set<string> },
): 'read' | 'held' | 'partly' {
  const { moved } = into;
  const from = offsets[file] ?? 0;
  const size = statSync(file).size;
  if (size <= from) return 'read';
  const { buf, end, next } = readCompleteLines(file, from, Math.min(size - from, maxRead));
  if (end < 0) {
    // No line ends within a whole read: one longer line, read to its end in pieces.
    if (size - from < maxRead) return 'read'; // not written to its end yet
    const long = readLongLine(file, from, maxRead, MAX_TEXT_BYTES);
    if (long === null) return 'read'; // its end is not written yet
    if (long.line !== null && loggedAt(long.line) > notAfter) return 'held';
    moved[file] = long.next;
    if (long.line !== null && long.full !== null) addLine(server, long.line, long.full, into);
    return long.next < size ? 'partly' : 'read';
  }
  if (next === from) return 'read';
  moved[file] = next;
  // From one "AUDIT: " to the next: the lines between them are not pgAudit's.
  for (let at = 0; at < end; ) {
    const hit = buf.indexOf(AUDIT, at);
    if (hit < 0 || hit >= end) break;
    const nl = buf.lastIndexOf(0x0a, hit);
    const start = nl < at ? at : nl + 1;
    let stop = buf.indexOf(0x0a, hit);
    if (stop < 0 || stop > end) stop = end;
    at = stop + 1;
    const bytes = buf.subarray(start, stop);
    if (notAfter !== Number.POSITIVE_INFINITY && loggedAt(bytes) > notAfter) {
      moved[file] = from + start;
      return 'held';
    }
    addLine(server, bytes, undefined, into);
  }
  return size - from > maxRead ? 'partly' : 'read';
}

/** A pgAudit line (`full`: the whole statement's measure, for a line read in pieces) into `into`,
 * with its pid and substatement id; a line without them is skipped. */
function addLine(server: ServerLogs, bytes: Buffer, full: FullText | undefined, into: { lines: CollectedLine[]; keys: Set<string> }): void {
  const quick = quickFields(bytes) ?? parsedFields(bytes);
  if (quick === null) return;
  const nestedOnly = server.nestedOnly === true;
  into.lines.push({ server: server.name, pid: quick.pid, substatementId: quick.substatementId, nestedOnly, bytes, full });
  into.keys.add(sessionKey(server.name, quick.pid));
}

const TIMESTAMP = Buffer.from('{"timestamp":"');

/** When the server logged a jsonlog line (ms, from its first field, as parsePgAuditLine reads it);
 * NaN without one (never held). */
function loggedAt(line: Buffer): number {
  if (!line.subarray(0, TIMESTAMP.length).equals(TIMESTAMP)) return Number.NaN;
  const close = line.indexOf(0x22, TIMESTAMP.length);
  if (close < 0 || close - TIMESTAMP.length > 40) return Number.NaN;
  return jsonlogTimeMs(line.toString('latin1', TIMESTAMP.length, close));
}

/** pgAudit's MISC commands of transaction control: top-level only (procedures commit through SPI, unlogged). */
const TRANSACTION_CONTROL = new Set([
  'BEGIN',
  'START TRANSACTION',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
  'ROLLBACK TO SAVEPOINT',
  'PREPARE TRANSACTION',
  'COMMIT PREPARED',
  'ROLLBACK PREPARED',
]);

export function finishLines(lines: readonly CollectedLine[], sessions: ReadonlyMap<string, JoinedSession>, maxTextBytes = MAX_TEXT_BYTES): PgAuditEvent[] {
  const out: PgAuditEvent[] = [];
  for (const l of lines) {
    const session = sessions.get(sessionKey(l.server, l.pid));
    if (session && !l.nestedOnly && l.substatementId <= 1) continue;
    const a = parsePgAuditLine(l.bytes.toString('utf8'));
    if (!a) continue;
    if (session && a.class === 'MISC' && TRANSACTION_CONTROL.has(a.command)) continue;
    const long = Buffer.byteLength(a.statement) > maxTextBytes;
    // Measured as pgAudit logged it, unless a password was redacted from it: then as redacted.
    const raw = long && l.full === undefined ? rawStatement(l.bytes) : null;
    const full = l.full ?? (long ? measure(raw !== null && redactPasswords(raw) === raw ? raw : a.statement) : undefined);
    out.push({
      type: 'statement.pgaudit',
      time: a.time,
      server: l.server,
      sessionId: session?.connId ?? null,
      backendPid: a.pid,
      user: a.user,
      database: a.database,
      applicationName: session?.applicationName ?? a.applicationName,
      auditType: a.auditType,
      statementId: a.statementId,
      substatementId: a.substatementId,
      class: a.class,
      command: a.command,
      objectType: a.objectType,
      objectName: a.objectName,
      statement: long ? cutUtf8(a.statement, maxTextBytes) : a.statement,
      parameter: a.parameter.length > maxTextBytes / 3 ? cutUtf8(a.parameter, maxTextBytes) : a.parameter,
      ...(full !== undefined ? { truncated: true, textLength: full.length, textSha256: full.sha256 } : {}),
    });
  }
  return out;
}

/**
 * Bytes [from, from + length) of a file; `end`: where its last complete line ends (the "\n"),
 * `next`: the offset after it; `end` -1 when no line ends in them.
 */
function readCompleteLines(file: string, from: number, length: number): { buf: Buffer; end: number; next: number } {
  const buf = Buffer.allocUnsafe(length);
  const fd = openSync(file, 'r');
  let got = 0;
  try {
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, from + got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  const nl = got === 0 ? -1 : buf.lastIndexOf(0x0a, got - 1);
  if (nl < 0) return { buf, end: -1, next: from };
  return { buf, end: nl, next: from + nl + 1 };
}

const AUDIT = Buffer.from('AUDIT: ');
const PID = Buffer.from('"pid":');
const MESSAGE = Buffer.from('"message":"AUDIT: ');

/**
 * The pid and substatement id of a jsonlog pgAudit line without decoding or parsing it:
 * `"pid":<digits>` and the third field of `"message":"AUDIT: <type>,<statement id>,<substatement
 * id>,`. Inside JSON strings every quote is escaped, so these keys cannot be faked by logged text.
 * Null when the line does not look exactly so (the caller parses it then).
 */
function quickFields(line: Buffer): { pid: number; substatementId: number } | null {
  const p = line.indexOf(PID);
  const m = line.indexOf(MESSAGE);
  if (p < 0 || m < 0) return null;
  const pid = digits(line, p + PID.length);
  if (pid === null) return null;
  const at = m + MESSAGE.length;
  const c1 = line.indexOf(0x2c, at);
  if (c1 < 0 || c1 - at > 16) return null;
  const statementId = digits(line, c1 + 1);
  if (statementId === null || line[statementId.end] !== 0x2c) return null;
  const sub = digits(line, statementId.end + 1);
  if (sub === null || line[sub.end] !== 0x2c) return null;
  return { pid: pid.value, substatementId: sub.value };
}

function digits(b: Buffer, at: number): { value: number; end: number } | null {
  let v = 0;
  let i = at;
  for (; i < b.length && i - at < 15; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  return i === at ? null : { value: v, end: i };
}

function parsedFields(line: Buffer): { pid: number; substatementId: number } | null {
  const a = parsePgAuditLine(line.toString('utf8'));
  return a ? { pid: a.pid, substatementId: a.substatementId } : null;
}

/** The statement as pgAudit logged it (before redaction), to measure a long one. */
function rawStatement(line: Buffer): string | null {
  try {
    const message = (JSON.parse(line.toString('utf8')) as { message?: unknown }).message;
    if (typeof message !== 'string' || !message.startsWith('AUDIT: ')) return null;
    return splitCsv(message.slice(7))[7] ?? null;
  } catch {
    return null;
  }
}
