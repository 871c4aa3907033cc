// parseStartupPacket: the first packet of a connection (no type byte), judged as PostgreSQL's
// ProcessStartupPacket does, with stricter bounds: duplicate, non-UTF-8 and too many parameters
// are refused.

import { isUtf8 } from 'node:buffer';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  MAX_CANCEL_KEY_LENGTH,
  MAX_STARTUP_PACKET_LENGTH,
  MIN_CANCEL_KEY_LENGTH,
  SSL_REQUEST_CODE,
} from './codes.js';
import { ProtocolError, protocolViolation } from './protocol-error.js';

export { ProtocolError } from './protocol-error.js';

export type StartupPacket =
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  | { readonly kind: 'cancel'; readonly processId: number; readonly secretKey: Buffer }
  | {
      readonly kind: 'startup';
      readonly majorVersion: number;
      readonly minorVersion: number;
      readonly params: Map<string, string>;
    };

export interface StartupParseOptions {
  /** Most parameters accepted in a StartupMessage (default 64). */
  readonly maxParams?: number;
  /** Largest packet accepted, length word included (default 10000). */
  readonly maxLength?: number;
}

export const DEFAULT_MAX_STARTUP_PARAMS = 64;

/**
 * True when a connection's first byte opens a TLS handshake record (0x16): PostgreSQL 17 "direct
 * TLS" (sslnegotiation=direct), with no SSLRequest. A startup packet cannot start with 0x16 (its
 * length word would exceed any bound), so check this before feeding a StartupReader.
 */
export function isTlsHandshakeStart(firstByte: number): boolean {
  return firstByte === 0x16;
}

const LAYOUT_ERROR = 'invalid startup packet layout: expected terminator as last byte';
const LENGTH_ERROR = 'invalid length of startup packet';

/** Newest minor of protocol 3 the gateway speaks to clients: 3.2 (PostgreSQL 18), whose only
 * change is a longer cancel key. Its servers are still spoken to in 3.0. */
export const NEWEST_PROTOCOL_MINOR = 2;

/**
 * PostgreSQL reports some startup failures only in its log (COMMERROR) and closes without a
 * word: a startup packet whose length is out of bounds (a Terminate or any garbage sent before
 * SSLRequest). True for those; the others get their FATAL ErrorResponse.
 */
export function closesWithoutMessage(err: ProtocolError): boolean {
  return err.sqlstate === '08P01' && err.message === LENGTH_ERROR;
}

/**
 * Parses one whole startup-phase packet, its 4-byte length included.
 * Throws ProtocolError for anything malformed.
 */
export function parseStartupPacket(packet: Buffer, options: StartupParseOptions = {}): StartupPacket {
  const maxLength = options.maxLength ?? MAX_STARTUP_PACKET_LENGTH;
  const maxParams = options.maxParams ?? DEFAULT_MAX_STARTUP_PARAMS;

  if (packet.length < 8 || packet.length > maxLength || packet.readInt32BE(0) !== packet.length) {
    throw protocolViolation(LENGTH_ERROR);
  }
  const code = packet.readUInt32BE(4);

  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (packet.length !== 8) throw protocolViolation('invalid length of encryption request packet');
    return { kind: code === SSL_REQUEST_CODE ? 'ssl' : 'gssenc' };
  }

  if (code === CANCEL_REQUEST_CODE) {
    const keyLength = packet.length - 12;
    if (keyLength < MIN_CANCEL_KEY_LENGTH || keyLength > MAX_CANCEL_KEY_LENGTH) {
      throw protocolViolation('invalid length of cancel request packet');
    }
    return { kind: 'cancel', processId: packet.readInt32BE(8), secretKey: packet.subarray(12) };
  }

  const majorVersion = code >>> 16;
  const minorVersion = code & 0xffff;
  if (majorVersion !== 3) {
    throw new ProtocolError('0A000', `unsupported frontend protocol ${majorVersion}.${minorVersion}: server supports 3.0 to 3.2`);
  }

  return { kind: 'startup', majorVersion, minorVersion, params: parseParams(packet, maxParams) };
}

function parseParams(packet: Buffer, maxParams: number): Map<string, string> {
  const end = packet.length;
  if (packet[end - 1] !== 0) throw protocolViolation(LAYOUT_ERROR);

  const params = new Map<string, string>();
  let offset = 8;
  while (offset < end) {
    if (packet[offset] === 0) break; // the list terminator (an empty name)
    const nameEnd = packet.indexOf(0, offset); // found: the last byte is NUL
    const valueStart = nameEnd + 1;
    if (valueStart >= end) break; // a name without a value: reported below
    const valueEnd = packet.indexOf(0, valueStart);

    if (params.size >= maxParams) {
      throw protocolViolation(`too many parameters in startup packet: at most ${maxParams} are allowed`);
    }
    const name = utf8(packet.subarray(offset, nameEnd));
    const value = utf8(packet.subarray(valueStart, valueEnd));
    if (params.has(name)) throw protocolViolation(`duplicate startup parameter "${name}"`);
    params.set(name, value);
    offset = valueEnd + 1;
  }
  if (offset !== end - 1) throw protocolViolation(LAYOUT_ERROR);

  if (!params.get('user')) {
    throw new ProtocolError('28000', 'no PostgreSQL user name specified in startup packet');
  }
  return params;
}

function utf8(bytes: Buffer): string {
  if (!isUtf8(bytes)) throw protocolViolation('invalid byte sequence for encoding "UTF8" in startup packet');
  return bytes.toString('utf8');
}
