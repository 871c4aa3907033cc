// The `statement` event of an audited statement, built once per statement with its canonical
// JSON written alongside (the audit store takes that text as is instead of serializing the
// event): the keys in canonical order, the session's part (connection and fields) and each
// statement shape's class and object lists serialized once, not per statement. The text is
// exactly canonicalJson of the event (test/unit/audit/statement-executed.test.ts checks it).

import { canonicalJson, withCanonicalText } from './store/canonical-json.js';
import type { StatementEvent } from './tap/index.js';
import type { ConnectionContext, StatementExecuted } from '../events/types.js';

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
}

export function eventSession(connection: ConnectionContext, fields: SessionFields): EventSession {
  return { connection, fields, connectionJson: canonicalJson(connection) };
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

const str = (s: string): string => JSON.stringify(s);
const num = (n: number): string => (Number.isFinite(n) ? String(n) : 'null');

/** The same fields as `{ type, time, connection, ...fields, ...st }`, with its canonical JSON. */
export function statementExecuted(time: string, session: EventSession, st: StatementEvent): StatementExecuted {
  const f = session.fields;
  const e: Record<string, unknown> = {};
  let j = '{';
  if (f.applicationName !== undefined) {
    e.applicationName = f.applicationName;
    j += `"applicationName":${str(f.applicationName)},`;
  }
  e.class = st.class;
  e.classes = st.classes;
  e.commandTag = st.commandTag;
  e.connection = session.connection;
  j += `"class":${str(st.class)},"classes":${jsonOfList(st.classes)},"commandTag":${str(st.commandTag)},"connection":${session.connectionJson}`;
  if (st.copyBytes !== undefined) {
    e.copyBytes = st.copyBytes;
    j += `,"copyBytes":${num(st.copyBytes)}`;
  }
  if (f.database !== undefined) {
    e.database = f.database;
    j += `,"database":${str(f.database)}`;
  }
  e.durationMs = st.durationMs;
  j += `,"durationMs":${num(st.durationMs)}`;
  if (st.errorMessage !== undefined) {
    e.errorMessage = st.errorMessage;
    j += `,"errorMessage":${str(st.errorMessage)}`;
  }
  if (f.objectId !== undefined) {
    e.objectId = f.objectId;
    j += `,"objectId":${str(f.objectId)}`;
  }
  e.objects = st.objects;
  e.outcome = st.outcome;
  j += `,"objects":${jsonOfList(st.objects)},"outcome":${str(st.outcome)}`;
  if (st.params !== undefined) {
    e.params = st.params;
    j += `,"params":${JSON.stringify(st.params)}`; // strings and nulls: canonical as they are
  }
  if (st.parseError !== undefined) {
    e.parseError = st.parseError;
    j += `,"parseError":${str(st.parseError)}`;
  }
  e.protocol = st.protocol;
  j += `,"protocol":${str(st.protocol)}`;
  if (st.rows !== undefined) {
    e.rows = st.rows;
    j += `,"rows":${num(st.rows)}`;
  }
  if (f.server !== undefined) {
    e.server = f.server;
    j += `,"server":${str(f.server)}`;
  }
  if (st.sqlstate !== undefined) {
    e.sqlstate = st.sqlstate;
    j += `,"sqlstate":${str(st.sqlstate)}`;
  }
  e.text = st.text;
  j += `,"text":${str(st.text)}`;
  if (st.textLength !== undefined) {
    e.textLength = st.textLength;
    j += `,"textLength":${num(st.textLength)}`;
  }
  if (st.textSha256 !== undefined) {
    e.textSha256 = st.textSha256;
    j += `,"textSha256":${str(st.textSha256)}`;
  }
  e.time = time;
  j += `,"time":${str(time)}`;
  if (st.truncated !== undefined) {
    e.truncated = st.truncated;
    j += `,"truncated":${st.truncated ? 'true' : 'false'}`;
  }
  e.type = 'statement';
  j += ',"type":"statement"';
  if (f.user !== undefined) {
    e.user = f.user;
    j += `,"user":${str(f.user)}`;
  }
  return withCanonicalText(e, `${j}}`) as unknown as StatementExecuted;
}
