// Parsers for client message bodies during authentication. A 'p' message means a
// SASLInitialResponse, a SASLResponse or a PasswordMessage depending on what the gateway asked
// for, so the caller picks the parser. `body` is WireMessage.body.

import { BodyCursor } from './body-cursor.js';

export interface SASLInitialResponse {
  readonly mechanism: string;
  /** Client-first-message; empty when the client sent length -1 (no data). */
  readonly data: Buffer;
}

export interface AuthMessageLimits {
  /** Largest SASL payload accepted (default 8192 bytes). */
  readonly maxSaslData?: number;
  /** Largest password accepted, in bytes (default 65536: room for an OIDC access token). */
  readonly maxPassword?: number;
}

export const DEFAULT_MAX_SASL_DATA = 8192;
export const DEFAULT_MAX_PASSWORD = 65536;
const MAX_MECHANISM_NAME = 64;

export function parseSASLInitialResponse(body: Buffer, limits: AuthMessageLimits = {}): SASLInitialResponse {
  const max = limits.maxSaslData ?? DEFAULT_MAX_SASL_DATA;
  const c = new BodyCursor(body, 'SASLInitialResponse');
  const mechanism = c.cstring(MAX_MECHANISM_NAME, 'mechanism name');
  if (mechanism === '') throw c.fail('empty mechanism name');
  const length = c.int32();
  if (length === -1) {
    c.end();
    return { mechanism, data: Buffer.alloc(0) };
  }
  if (length < 0) throw c.fail('negative data length');
  if (length > max) throw c.fail(`data longer than ${max} bytes`);
  if (length !== c.remaining) throw c.fail('data length does not match message length');
  return { mechanism, data: c.rest() };
}

export function parseSASLResponse(body: Buffer, limits: AuthMessageLimits = {}): Buffer {
  const max = limits.maxSaslData ?? DEFAULT_MAX_SASL_DATA;
  const c = new BodyCursor(body, 'SASLResponse');
  if (c.remaining > max) throw c.fail(`data longer than ${max} bytes`);
  return c.rest();
}

/** PasswordMessage: UTF-8 text with exactly one NUL, at the end. */
export function parsePasswordMessage(body: Buffer, limits: AuthMessageLimits = {}): string {
  const max = limits.maxPassword ?? DEFAULT_MAX_PASSWORD;
  const c = new BodyCursor(body, 'PasswordMessage');
  const text = c.cstring(max, 'password');
  c.end();
  return text;
}
