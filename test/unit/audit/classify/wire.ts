// Protocol messages for tap tests, built with the gateway's own MessageWriter and serializers.

import { errorResponse, readyForQuery, type TransactionStatus } from '../../../../src/pgwire/backend.js';
import { MessageWriter } from '../../../../src/pgwire/message-writer.js';

// Frontend (client to server)

export const query = (text: string) => new MessageWriter().cstring(text).message('Q');

export function parse(name: string, text: string, types: readonly number[] = []): Buffer {
  const w = new MessageWriter().cstring(name).cstring(text).int16(types.length);
  for (const t of types) w.int32(t);
  return w.message('P');
}

/** Bind: values as text (format 0) unless `formats` says otherwise; null is SQL NULL. */
export function bind(portal: string, statement: string, values: readonly (string | Buffer | null)[] = [], formats: readonly number[] = []): Buffer {
  const w = new MessageWriter().cstring(portal).cstring(statement).int16(formats.length);
  for (const f of formats) w.int16(f);
  w.int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else {
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      w.int32(bytes.length).bytes(bytes);
    }
  }
  return w.int16(0).message('B');
}

export const execute = (portal = '', maxRows = 0) => new MessageWriter().cstring(portal).int32(maxRows).message('E');
export const describe = (kind: 'S' | 'P', name = '') => new MessageWriter().int8(kind.charCodeAt(0)).cstring(name).message('D');
export const close = (kind: 'S' | 'P', name: string) => new MessageWriter().int8(kind.charCodeAt(0)).cstring(name).message('C');
export const sync = () => new MessageWriter().message('S');
export const flush = () => new MessageWriter().message('H');
export const terminate = () => new MessageWriter().message('X');
export const copyData = (data: string | Buffer) => new MessageWriter().bytes(typeof data === 'string' ? Buffer.from(data) : data).message('d');
export const copyDone = () => new MessageWriter().message('c');

export function functionCall(oid: number, args: readonly string[]): Buffer {
  const w = new MessageWriter().int32(oid).int16(0).int16(args.length);
  for (const a of args) w.int32(Buffer.byteLength(a)).bytes(Buffer.from(a));
  return w.int16(0).message('F');
}

// Backend (server to client)

export const commandComplete = (tag: string) => new MessageWriter().cstring(tag).message('C');
export const error = (sqlstate: string, message: string) => errorResponse({ severity: 'ERROR', sqlstate, message });
export const ready = (status: TransactionStatus = 'I') => readyForQuery(status);
export const parseComplete = () => new MessageWriter().message('1');
export const bindComplete = () => new MessageWriter().message('2');
export const closeComplete = () => new MessageWriter().message('3');
export const noData = () => new MessageWriter().message('n');
export const emptyQuery = () => new MessageWriter().message('I');
export const portalSuspended = () => new MessageWriter().message('s');
export const copyInResponse = () => new MessageWriter().int8(0).int16(1).int16(0).message('G');
export const copyOutResponse = () => new MessageWriter().int8(0).int16(1).int16(0).message('H');
export const copyDataOut = (data: string) => new MessageWriter().bytes(Buffer.from(data)).message('d');
export const copyDoneOut = () => new MessageWriter().message('c');
export const functionResult = (value: string) => new MessageWriter().int32(Buffer.byteLength(value)).bytes(Buffer.from(value)).message('V');
export const notice = () => new MessageWriter().int8(0x53).cstring('NOTICE').int8(0x43).cstring('00000').int8(0x4d).cstring('hi').int8(0).message('N');
export const parameterStatus = (name: string, value: string) => new MessageWriter().cstring(name).cstring(value).message('S');

export function rowDescription(columns: readonly string[]): Buffer {
  const w = new MessageWriter().int16(columns.length);
  for (const c of columns) w.cstring(c).int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0);
  return w.message('T');
}

export function dataRow(values: readonly (string | null)[]): Buffer {
  const w = new MessageWriter().int16(values.length);
  for (const v of values) {
    if (v === null) w.int32(-1);
    else w.int32(Buffer.byteLength(v)).bytes(Buffer.from(v));
  }
  return w.message('D');
}

export const cat = (...parts: Buffer[]) => Buffer.concat(parts);
