// Parsers for message bodies received from a PostgreSQL server (the gateway as its client).
// `body` is WireMessage.body: type byte and length word already removed.

import { isUtf8 } from 'node:buffer';
import { MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH } from './codes.js';
import { BodyCursor } from './body-cursor.js';
import { AuthCode } from './message-types.js';

export type AuthenticationRequest =
  | { readonly kind: 'ok' }
  | { readonly kind: 'cleartext' }
  | { readonly kind: 'md5'; readonly salt: Buffer }
  | { readonly kind: 'sasl'; readonly mechanisms: readonly string[] }
  | { readonly kind: 'saslContinue'; readonly data: Buffer }
  | { readonly kind: 'saslFinal'; readonly data: Buffer }
  | { readonly kind: 'other'; readonly code: number };

export interface ErrorOrNotice {
  /** Non-localized severity (V), or S when the server sent no V. */
  readonly severity: string;
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** Every field by its one-letter code. */
  readonly fields: Map<string, string>;
}

export interface BackendKeyData {
  readonly processId: number;
  readonly secretKey: Buffer;
}

const MAX_MECHANISMS = 16;
const MAX_NAME = 256;
const MAX_FIELD = 64 * 1024;
const MAX_FIELDS = 32;

export function parseAuthentication(body: Buffer): AuthenticationRequest {
  const c = new BodyCursor(body, 'Authentication');
  const code = c.int32();
  switch (code) {
    case AuthCode.Ok:
      c.end();
      return { kind: 'ok' };
    case AuthCode.CleartextPassword:
      c.end();
      return { kind: 'cleartext' };
    case AuthCode.MD5Password: {
      const salt = c.bytes(4);
      c.end();
      return { kind: 'md5', salt };
    }
    case AuthCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const name = c.cstring(MAX_NAME, 'mechanism name');
        if (name === '') break;
        if (mechanisms.length === MAX_MECHANISMS) throw c.fail('too many SASL mechanisms');
        mechanisms.push(name);
      }
      c.end();
      if (mechanisms.length === 0) throw c.fail('no SASL mechanism offered');
      return { kind: 'sasl', mechanisms };
    }
    case AuthCode.SASLContinue:
      return { kind: 'saslContinue', data: c.rest() };
    case AuthCode.SASLFinal:
      return { kind: 'saslFinal', data: c.rest() };
    default:
      return { kind: 'other', code };
  }
}

/** walkErrorFields: the body ended where a field code (or the final zero) was due. */
const ENDED = -1;
/** walkErrorFields: the last field's value has no terminating zero. */
const UNTERMINATED = -2;

/**
 * The one reading of ErrorResponse and NoticeResponse bodies, (code byte, cstring)* then a zero
 * byte, in buf[start, end): `field` gets each field's code and value extent (`terminated` false
 * for a last value cut by the end). Returns the offset of the final zero, or ENDED/UNTERMINATED.
 */
function walkErrorFields(buf: Buffer, start: number, end: number, field: (code: number, from: number, to: number, terminated: boolean) => void): number {
  let at = start;
  for (;;) {
    if (at >= end) return ENDED;
    const code = buf[at]!;
    if (code === 0) return at;
    const stop = at + 1 < end ? buf.indexOf(0, at + 1) : -1;
    if (stop < 0 || stop >= end) {
      field(code, at + 1, end, false);
      return UNTERMINATED;
    }
    field(code, at + 1, stop, true);
    at = stop + 1;
  }
}

/** ErrorResponse and NoticeResponse bodies, strictly: every field bounded and UTF-8, nothing after the final zero. */
export function parseErrorOrNotice(body: Buffer): ErrorOrNotice {
  const c = new BodyCursor(body, 'ErrorResponse/NoticeResponse');
  const fields = new Map<string, string>();
  const last = walkErrorFields(body, 0, body.length, (code, from, to, terminated) => {
    if (fields.size === MAX_FIELDS) throw c.fail('too many fields');
    if (to - from > MAX_FIELD) throw c.fail(`field longer than ${MAX_FIELD} bytes`);
    if (!terminated) throw c.fail('unterminated field');
    const raw = body.subarray(from, to);
    if (!isUtf8(raw)) throw c.fail('field is not valid UTF-8');
    fields.set(String.fromCharCode(code), raw.toString('utf8'));
  });
  if (last === ENDED) throw c.fail('unexpected end of message');
  if (last + 1 !== body.length) throw c.fail('unexpected trailing data');
  const severity = fields.get('V') ?? fields.get('S');
  const sqlstate = fields.get('C');
  const message = fields.get('M');
  if (severity === undefined) throw c.fail('missing severity');
  if (sqlstate === undefined) throw c.fail('missing SQLSTATE');
  if (message === undefined) throw c.fail('missing message');
  const detail = fields.get('D');
  const hint = fields.get('H');
  return {
    severity,
    sqlstate,
    message,
    ...(detail !== undefined ? { detail } : {}),
    ...(hint !== undefined ? { hint } : {}),
    fields,
  };
}

/**
 * The same fields, read leniently from buf[start, end) (a body the relay may have cut): never
 * throws, missing fields are ''. For the observer of relayed sessions, which must not stop on an
 * odd but forwarded message.
 */
export function readErrorSummary(buf: Buffer, start: number, end: number): { severity: string; sqlstate: string; message: string } {
  let severity = '';
  let sqlstate = '';
  let message = '';
  walkErrorFields(buf, start, end, (code, from, to) => {
    const value = to > from ? buf.toString('utf8', from, to) : '';
    if (code === 0x43)
      sqlstate = value; // C
    else if (code === 0x4d)
      message = value; // M
    else if (code === 0x56 || (code === 0x53 && severity === '')) severity = value; // V, else S
  });
  return { severity, sqlstate, message };
}

export function parseBackendKeyData(body: Buffer): BackendKeyData {
  const c = new BodyCursor(body, 'BackendKeyData');
  const processId = c.int32();
  const secretKey = c.rest();
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw c.fail('invalid cancel key length');
  }
  return { processId, secretKey };
}

export function parseParameterStatus(body: Buffer): { readonly name: string; readonly value: string } {
  const c = new BodyCursor(body, 'ParameterStatus');
  const name = c.cstring(MAX_NAME, 'parameter name');
  const value = c.cstring(MAX_FIELD, 'parameter value');
  c.end();
  return { name, value };
}

export function parseReadyForQuery(body: Buffer): 'I' | 'T' | 'E' {
  const c = new BodyCursor(body, 'ReadyForQuery');
  const status = String.fromCharCode(c.byte());
  c.end();
  if (status !== 'I' && status !== 'T' && status !== 'E') throw c.fail('unknown transaction status');
  return status;
}
