// The server name a TLS ClientHello carries, read from its first bytes without taking the
// handshake over: the native relay's TLS (rustls) refuses a ClientHello whose server_name is
// neither a DNS name nor an IP address with an alert, where Node's TLS goes on without one. libpq
// sends such a name when given only `hostaddr` (its default socket directory, e.g.
// "/var/run/postgresql"), so those connections stay on Node's TLS (native-tls.ts).
import net from 'node:net';

const TLS_HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const SERVER_NAME = 0x0000;
const HOST_NAME = 0x00;

/** A DNS name as rustls takes it (labels of letters, digits, '-' and '_', 1-63 bytes each, at most
 * 253 bytes, a trailing dot allowed). */
const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

export type ServerName = { readonly kind: 'none' | 'invalid' | 'unknown' } | { readonly kind: 'dns'; readonly name: string };
const NONE: ServerName = { kind: 'none' };
const INVALID: ServerName = { kind: 'invalid' };
const UNKNOWN: ServerName = { kind: 'unknown' };

/**
 * What the ClientHello at the start of `buf` says of its server name: 'none' (no extension, or an
 * IP address, which rustls ignores), 'dns' (a DNS name, given), 'invalid' (anything else: rustls
 * refuses it), or 'unknown' (the ClientHello is not all in `buf`, or not a ClientHello).
 */
export function clientHelloServerName(buf: Buffer): ServerName {
  if (buf.length < 9 || buf[0] !== TLS_HANDSHAKE || buf[5] !== CLIENT_HELLO) return UNKNOWN;
  const recordEnd = 5 + buf.readUInt16BE(3);
  const helloEnd = 9 + buf.readUIntBE(6, 3);
  if (helloEnd > recordEnd || helloEnd > buf.length) return UNKNOWN;
  let at = 9 + 2 + 32; // client_version, random
  if (at + 1 > helloEnd) return UNKNOWN;
  at += 1 + buf[at]!; // session_id
  if (at + 2 > helloEnd) return UNKNOWN;
  at += 2 + buf.readUInt16BE(at); // cipher_suites
  if (at + 1 > helloEnd) return UNKNOWN;
  at += 1 + buf[at]!; // compression_methods
  if (at === helloEnd) return NONE;
  if (at + 2 > helloEnd) return UNKNOWN;
  const extEnd = at + 2 + buf.readUInt16BE(at);
  if (extEnd > helloEnd) return UNKNOWN;
  at += 2;
  while (at + 4 <= extEnd) {
    const type = buf.readUInt16BE(at);
    const len = buf.readUInt16BE(at + 2);
    const body = at + 4;
    if (body + len > extEnd) return UNKNOWN;
    if (type === SERVER_NAME) return serverName(buf, body, body + len);
    at = body + len;
  }
  return NONE;
}

function serverName(buf: Buffer, at: number, end: number): ServerName {
  if (at + 2 > end) return INVALID;
  const listEnd = at + 2 + buf.readUInt16BE(at);
  if (listEnd > end) return INVALID;
  at += 2;
  let found: ServerName = INVALID;
  while (at + 3 <= listEnd) {
    const type = buf[at]!;
    const len = buf.readUInt16BE(at + 1);
    if (at + 3 + len > listEnd) return INVALID;
    if (type === HOST_NAME) {
      const name = buf.toString('latin1', at + 3, at + 3 + len);
      // rustls reads the first host_name only.
      found = net.isIP(name) !== 0 ? NONE : DNS_NAME.test(name) ? { kind: 'dns', name } : INVALID;
      break;
    }
    at += 3 + len;
  }
  return found;
}
