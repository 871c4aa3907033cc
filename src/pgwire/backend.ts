// Serializers for the messages the gateway sends to clients (as a PostgreSQL server would).

import { MAX_CANCEL_KEY_LENGTH, MIN_CANCEL_KEY_LENGTH } from './codes.js';
import { AuthCode, BackendType } from './message-types.js';
import { MessageWriter } from './message-writer.js';

export type ErrorSeverity = 'FATAL' | 'ERROR' | 'PANIC';
export type NoticeSeverity = 'WARNING' | 'NOTICE' | 'DEBUG' | 'INFO' | 'LOG';
export type TransactionStatus = 'I' | 'T' | 'E';

export interface ErrorFields {
  readonly severity: ErrorSeverity;
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

export interface NoticeFields {
  readonly severity: NoticeSeverity;
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

/** ErrorResponse: fields S, V (non-localized severity), C, M, then D and H when given. */
export function errorResponse(fields: ErrorFields): Buffer {
  return errorOrNotice(BackendType.ErrorResponse, fields);
}

/** NoticeResponse, same field layout as ErrorResponse. */
export function noticeResponse(fields: NoticeFields): Buffer {
  return errorOrNotice(BackendType.NoticeResponse, fields);
}

export function authenticationOk(): Buffer {
  return new MessageWriter().int32(AuthCode.Ok).message(BackendType.Authentication);
}

export function authenticationCleartextPassword(): Buffer {
  return new MessageWriter().int32(AuthCode.CleartextPassword).message(BackendType.Authentication);
}

/** AuthenticationSASL: the mechanisms offered, each NUL-terminated, then an empty name. */
export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  if (mechanisms.length === 0) throw new TypeError('at least one SASL mechanism is required');
  const w = new MessageWriter().int32(AuthCode.SASL);
  for (const mechanism of mechanisms) {
    if (mechanism === '') throw new TypeError('SASL mechanism name must not be empty');
    w.cstring(mechanism);
  }
  return w.int8(0).message(BackendType.Authentication);
}

export function authenticationSASLContinue(data: Uint8Array): Buffer {
  return new MessageWriter().int32(AuthCode.SASLContinue).bytes(data).message(BackendType.Authentication);
}

export function authenticationSASLFinal(data: Uint8Array): Buffer {
  return new MessageWriter().int32(AuthCode.SASLFinal).bytes(data).message(BackendType.Authentication);
}

export function parameterStatus(name: string, value: string): Buffer {
  return new MessageWriter().cstring(name).cstring(value).message(BackendType.ParameterStatus);
}

/** BackendKeyData: process id and a 4-byte key (protocol 3.0) or up to 256 bytes (3.2). */
export function backendKeyData(processId: number, secretKey: Uint8Array): Buffer {
  if (secretKey.length < MIN_CANCEL_KEY_LENGTH || secretKey.length > MAX_CANCEL_KEY_LENGTH) {
    throw new RangeError(`cancel key must be ${MIN_CANCEL_KEY_LENGTH} to ${MAX_CANCEL_KEY_LENGTH} bytes`);
  }
  return new MessageWriter().int32(processId).bytes(secretKey).message(BackendType.BackendKeyData);
}

export function readyForQuery(status: TransactionStatus): Buffer {
  return new MessageWriter().int8(status.charCodeAt(0)).message(BackendType.ReadyForQuery);
}

/**
 * NegotiateProtocolVersion: the newest minor version of protocol 3 the gateway supports and the
 * `_pq_.` options it did not recognize.
 */
export function negotiateProtocolVersion(newestMinor: number, unrecognizedOptions: readonly string[]): Buffer {
  const w = new MessageWriter().int32((3 << 16) | newestMinor).int32(unrecognizedOptions.length);
  for (const option of unrecognizedOptions) w.cstring(option);
  return w.message(BackendType.NegotiateProtocolVersion);
}

/** The single byte answering an SSLRequest: 'S' (TLS handshake follows) or 'N'. */
export function sslResponse(accept: boolean): Buffer {
  return Buffer.from(accept ? 'S' : 'N', 'latin1');
}

/** The single byte answering a GSSENCRequest: 'G' or 'N'. */
export function gssEncResponse(accept: boolean): Buffer {
  return Buffer.from(accept ? 'G' : 'N', 'latin1');
}

function errorOrNotice(type: string, fields: ErrorFields | NoticeFields): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(fields.sqlstate)) throw new TypeError('SQLSTATE must be 5 characters of [0-9A-Z]');
  const w = new MessageWriter()
    .int8(0x53) // S: severity (we never localize, so S and V are equal)
    .cstring(fields.severity)
    .int8(0x56) // V: severity, never localized
    .cstring(fields.severity)
    .int8(0x43) // C: SQLSTATE
    .cstring(fields.sqlstate)
    .int8(0x4d) // M: message
    .cstring(fields.message);
  if (fields.detail !== undefined) w.int8(0x44).cstring(fields.detail); // D
  if (fields.hint !== undefined) w.int8(0x48).cstring(fields.hint); // H
  return w.int8(0).message(type);
}
