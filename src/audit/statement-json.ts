// The `statement` event of an audited statement, built once per statement with its canonical
// JSON written alongside (the audit store takes that text as is instead of serializing the
// event): the keys in canonical order, the session's part (connection and fields) and each
// statement shape's class and object lists serialized once, not per statement. The text is
// exactly canonicalJson of the event (test/unit/audit/statement-executed.test.ts checks it).

import { canonicalJson, withCanonicalText } from './store/canonical-json.js';
import type { StatementEvent } from './tap/index.js';
import type { ConnectionContext, StatementExecuted } from '../events/types.js';
import type { StatementInfo } from './classify/index.js';

/** The session's fields an event carries (as the gateway publishes them). */
export interface SessionFields {
  readonly server?: string;
  readonly user?: string;
  readonly database?: string;
  readonly applicationName?: string;
  readonly objectId?: string;
}

/** What every statement event of one session carries, with its JSON. */
export interface EventSession {
  readonly connection: ConnectionContext;
  readonly fields: SessionFields;
  readonly connectionJson: string;
  /** The session's fixed parts of the text, each with the keys around it that never change. */
  readonly json: {
    /** `{` and applicationName. */
    readonly head: string;
    /** connection, from its key on. */
    readonly connection: string;
    /** database, from its key on (empty when absent). */
    readonly database: string;
    /** database and the durationMs key. */
    readonly duration: string;
    /** server and the text key (no sqlstate between). */
    readonly text: string;
    readonly objectId: string;
    readonly server: string;
    /** type and user, and the closing brace. */
    readonly tail: string;
  };
  /** The runs of text the session's last statement shared with most of the next (see statementExecuted). */
  readonly memo: RunMemo;
}

/** The last runs of fixed fields a session's statements were written with, and what they were made of. */
interface RunMemo {
  /** From `{` to connection: applicationName, class, classes, commandTag, connection. */
  head: string;
  class: string | null;
  classes: readonly unknown[] | null;
  commandTag: string | null;
  /** objectId, objects and outcome, and protocol when no field comes between (params, parseError). */
  objects: string;
  objectsOf: readonly unknown[] | null;
  outcome: string | null;
  protocol: string | null;
}

export function eventSession(connection: ConnectionContext, fields: SessionFields): EventSession {
  const connectionJson = canonicalJson(connection);
  const field = (key: string, value: string | undefined) => (value === undefined ? '' : `,"${key}":${str(value)}`);
  return {
    connection,
    fields,
    connectionJson,
    json: {
      head: fields.applicationName === undefined ? '{' : `{"applicationName":${str(fields.applicationName)},`,
      connection: `,"connection":${connectionJson}`,
      database: field('database', fields.database),
      duration: `${field('database', fields.database)},"durationMs":`,
      text: `${field('server', fields.server)},"text":`,
      objectId: field('objectId', fields.objectId),
      server: field('server', fields.server),
      tail: `,"type":"statement"${field('user', fields.user)}}`,
    },
    memo: { head: '', class: null, classes: null, commandTag: null, objects: '', objectsOf: null, outcome: null, protocol: null },
  };
}

/** JSON of the class and object lists, which the classifier shares between the statements of a
 * shape (read-only: never changed once made). */
const listJson = new WeakMap<object, string>();

function jsonOfList(list: readonly unknown[]): string {
  if (list.length === 0) return '[]';
  let text = listJson.get(list);
  if (text === undefined) {
    text = canonicalJson(list);
    listJson.set(list, text);
  }
  return text;
}

/** A string with nothing JSON.stringify escapes (quote, backslash, controls, and lone surrogates,
 * which it writes as \u escapes: any surrogate goes the slow way). Anchored over the whole
 * string: V8 runs it about twice as fast as the unanchored search for one such character. */
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** JSON.stringify(s): a statement text mostly has nothing to escape, and then is only quoted
 * (several times cheaper than JSON.stringify, which copies it into a new string). */
function str(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** The point and the zeros before a fraction's digits, by the zeros it needs. */
const POINT = ['.', '.0', '.00'];

/** num() of a duration: the audit's are whole microseconds (k / 1000), whose shortest form is the
 * decimal of k / 1000 itself, written here from the integer (V8 runs its shortest-double search
 * for String(n): most of this function's cost before). Any other number goes to num(). Below
 * 1e9 ms a double is exact to far less than half a microsecond, so the decimal is the shortest. */
function ms(n: number): string {
  const k = Math.round(n * 1000);
  if (!(k >= 0 && k < 1e12) || k / 1000 !== n) return num(n);
  const whole = Math.floor(k / 1000);
  let frac = k - whole * 1000;
  if (frac === 0) return String(whole);
  let digits = 3;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  const f = String(frac);
  return `${whole}${POINT[digits - f.length]}${f}`;
}

/** JSON of an outcome or protocol (three values each: no map look-up). */
function small(s: string): string {
  switch (s) {
    case 'success':
      return '"success"';
    case 'simple':
      return '"simple"';
    case 'extended':
      return '"extended"';
    case 'failure':
      return '"failure"';
    default:
      return token(s);
  }
}

/** JSON of the few strings a field takes (class, commandTag, outcome, protocol), made once each. */
const tokenJson = new Map<string, string>();
const MAX_TOKENS = 512;

function token(s: string): string {
  let json = tokenJson.get(s);
  if (json === undefined) {
    json = str(s);
    if (tokenJson.size >= MAX_TOKENS) tokenJson.clear();
    tokenJson.set(s, json);
  }
  return json;
}

/** The last event time and its `,"time":...` (one per millisecond at most). */
let timeText = '';
let timeJson = ',"time":""';

/** The same fields as `{ type, time, connection, ...fields, ...st }`, with its canonical JSON.
 * The runs of fields that statements of a session mostly share (class to connection; objects,
 * outcome and protocol) are written once and reused while they are the same objects: fewer
 * strings made and joined per statement. */
export function statementExecuted(time: string, session: EventSession, st: StatementEvent): StatementExecuted {
  const f = session.fields;
  const sj = session.json;
  const m = session.memo;
  const e: Record<string, unknown> = {};
  if (f.applicationName !== undefined) e.applicationName = f.applicationName;
  e.class = st.class;
  e.classes = st.classes;
  e.commandTag = st.commandTag;
  e.connection = session.connection;
  if (m.class !== st.class || m.classes !== st.classes || m.commandTag !== st.commandTag) {
    m.head = `${sj.head}"class":${token(st.class)},"classes":${jsonOfList(st.classes)},"commandTag":${token(st.commandTag)}${sj.connection}`;
    m.class = st.class;
    m.classes = st.classes;
    m.commandTag = st.commandTag;
  }
  let j = m.head;
  if (st.copyBytes !== undefined) {
    e.copyBytes = st.copyBytes;
    j += `,"copyBytes":${num(st.copyBytes)}`;
  }
  if (f.database !== undefined) e.database = f.database;
  e.durationMs = st.durationMs;
  j += sj.duration + ms(st.durationMs);
  if (st.errorMessage !== undefined) {
    e.errorMessage = st.errorMessage;
    j += `,"errorMessage":${str(st.errorMessage)}`;
  }
  if (f.objectId !== undefined) e.objectId = f.objectId;
  e.objects = st.objects;
  e.outcome = st.outcome;
  const between = st.params !== undefined || st.parseError !== undefined;
  // The protocol is part of the run only when nothing comes between it and outcome.
  const protocol = between ? null : st.protocol;
  if (m.objectsOf !== st.objects || m.outcome !== st.outcome || m.protocol !== protocol) {
    m.objects = `${sj.objectId},"objects":${jsonOfList(st.objects)},"outcome":${small(st.outcome)}${protocol === null ? '' : `,"protocol":${small(protocol)}`}`;
    m.objectsOf = st.objects;
    m.outcome = st.outcome;
    m.protocol = protocol;
  }
  j += m.objects;
  if (st.params !== undefined) {
    e.params = st.params;
    j += `,"params":${JSON.stringify(st.params)}`; // strings and nulls: canonical as they are
  }
  if (st.parseError !== undefined) {
    e.parseError = st.parseError;
    j += `,"parseError":${str(st.parseError)}`;
  }
  e.protocol = st.protocol;
  if (between) j += `,"protocol":${small(st.protocol)}`;
  if (st.rows !== undefined) {
    e.rows = st.rows;
    j += `,"rows":${num(st.rows)}`;
  }
  if (f.server !== undefined) e.server = f.server;
  if (st.sqlstate !== undefined) {
    e.sqlstate = st.sqlstate;
    j += `${sj.server},"sqlstate":${str(st.sqlstate)},"text":`;
  } else j += sj.text;
  e.text = st.text;
  j += str(st.text);
  if (st.textLength !== undefined) {
    e.textLength = st.textLength;
    j += `,"textLength":${num(st.textLength)}`;
  }
  if (st.textSha256 !== undefined) {
    e.textSha256 = st.textSha256;
    j += `,"textSha256":${str(st.textSha256)}`;
  }
  e.time = time;
  if (time !== timeText) {
    timeText = time;
    timeJson = `,"time":${str(time)}`;
  }
  j += timeJson;
  if (st.truncated !== undefined) {
    e.truncated = st.truncated;
    j += `,"truncated":${st.truncated ? 'true' : 'false'}`;
  }
  e.type = 'statement';
  if (f.user !== undefined) e.user = f.user;
  return withCanonicalText(e, j + sj.tail) as unknown as StatementExecuted;
}

/** Buffer of length-prefixed UTF-8 strings then u32 numbers (little-endian), as the native relay
 * reads record parts (native/relay/src/record.rs). */
function parts(strings: readonly string[], numbers: readonly number[]): Buffer {
  const encoded = strings.map((p) => Buffer.from(p, 'utf8'));
  const out = Buffer.alloc(encoded.reduce((n, b) => n + 4 + b.length, 0) + 4 * numbers.length);
  let at = 0;
  for (const b of encoded) {
    at = out.writeUInt32LE(b.length, at);
    at += b.copy(out, at);
  }
  for (const n of numbers) at = out.writeUInt32LE(n, at);
  return out;
}

/** The session's fixed parts of its statement records, for the native relay to build the records of
 * its summarized statements with (the same text statementExecuted makes); `maxTextBytes`: longer
 * texts are cut, which the relay leaves to JavaScript. */
export function sessionRecordParts(session: EventSession, maxTextBytes: number): Buffer {
  const sj = session.json;
  return parts([sj.head, sj.connection, sj.duration, sj.objectId, sj.text, sj.tail], [maxTextBytes]);
}

/** A summarized shape's parts of its records (a successful simple Query of it): its class, classes
 * and command tag; its objects, outcome and protocol; and the bytes of the Query around the
 * statement (`lead`, `trail`: blanks and semicolons, one byte each). */
export function shapeRecordParts(info: Pick<StatementInfo, 'class' | 'classes' | 'commandTag' | 'objects'>, lead: number, trail: number): Buffer {
  return parts(
    [
      `"class":${token(info.class)},"classes":${jsonOfList(info.classes)},"commandTag":${token(info.commandTag)}`,
      `,"objects":${jsonOfList(info.objects)},"outcome":"success","protocol":"simple"`,
    ],
    [lead, trail],
  );
}
