// Messages the transaction-mode relay makes or answers itself, and small helpers of its streams
// (client-stream.ts, transaction-relay.ts): the refusal of LISTEN, a message header, the
// statements' LRU order, a batch written as one.
import type { Writable } from 'node:stream';
import { errorResponse, FrontendCode } from '../../pgwire/index.js';

export const LISTEN_MESSAGE = 'LISTEN is not supported on a server in transaction pooling mode';
export const LISTEN_ERROR = errorResponse({ severity: 'ERROR', sqlstate: '0A000', message: LISTEN_MESSAGE });
// A simple Query is answered by the server itself, so the error aborts a transaction block as
// PostgreSQL's would and ReadyForQuery carries the true status.
export const LISTEN_QUERY = (() => {
  const sql = `DO $pgw$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = '${LISTEN_MESSAGE}'; END$pgw$`;
  const body = Buffer.from(`${sql}\0`);
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = FrontendCode.Query;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
})();

/** Marks a statement as just used (a Set keeps insertion order: the first is the least recent). */
export function touch(set: Set<string>, name: string): void {
  set.delete(name);
  set.add(name);
}

export function header(type: number, bodyLength: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = type;
  h.writeInt32BE(bodyLength + 4, 1);
  return h;
}

/** Writes a batch in one go (one TLS record, one syscall where it fits); false when the stream
 * asks the writer to wait for 'drain'. */
export function writeCorked(stream: Writable, list: readonly Buffer[]): boolean {
  stream.cork();
  let ok = true;
  for (let i = 0; i < list.length; i++) ok = stream.write(list[i]!);
  stream.uncork();
  return ok;
}

/** The startup parameter pools are not told apart by: each client is greeted with its own, and a
 * backend lent to it is set to it (login.ts, transaction-relay.ts, server-connection.ts). */
export const APPLICATION_NAME = 'application_name';

/** `SET application_name` to a client's own name, as a simple Query: a pooled backend serves
 * clients of many applications, and `pg_stat_activity`, the server's log and `SHOW
 * application_name` should name the client it serves now (PgBouncer sends the same SET when a
 * client's parameter differs from the server connection's). An E'' literal means the same
 * whatever standard_conforming_strings is. */
export function setApplicationName(value: string): Buffer {
  const literal = value.replace(/\\/g, '\\\\').replace(/'/g, "''");
  const body = Buffer.from(`SET application_name TO E'${literal}'\0`, 'utf8');
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = FrontendCode.Query;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
