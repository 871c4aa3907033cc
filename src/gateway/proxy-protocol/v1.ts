// PROXY protocol version 1: one text line.
//   "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" | "PROXY TCP6 …" | "PROXY UNKNOWN[ …]\r\n"
// At most 107 bytes including CRLF. Single spaces, strict dotted-quad IPv4, RFC 4291 IPv6 (no
// zone), ports 0–65535 without leading zeros. Only printable ASCII before the CRLF.

import { formatIpv4, formatIpv6, parseIpv4Value, parseIpv6Words } from '../../network/ip-text.js';
import { ProxyProtocolError } from './errors.js';
import { proxyV1Prefix, matchesPrefix } from './signature.js';
import type { ProxyAddress, ProxyHeader, ProxyParseResult } from './types.js';

export const proxyV1MaxBytes = 107;

const protocols = ['TCP4 ', 'TCP6 ', 'UNKNOWN'].map((p) => Buffer.from(p, 'latin1'));

export function parseProxyV1(buf: Buffer, maxBytes: number): ProxyParseResult {
  if (!matchesPrefix(buf, proxyV1Prefix)) throw new ProxyProtocolError('bad-signature', 'not a PROXY protocol header');
  const limit = Math.min(maxBytes, proxyV1MaxBytes);
  const scan = Math.min(buf.length, limit);
  let lf = -1;
  for (let i = 0; i < scan; i++) {
    const c = buf[i];
    if (c === 0x0a) {
      if (i === 0 || buf[i - 1] !== 0x0d) throw new ProxyProtocolError('bad-syntax', 'PROXY v1 line ends without CRLF');
      lf = i;
      break;
    }
    if (c === 0x0d) {
      if (i + 1 < buf.length && buf[i + 1] !== 0x0a) {
        throw new ProxyProtocolError('bad-syntax', 'PROXY v1 line has a CR not followed by LF');
      }
    } else if (c < 0x20 || c > 0x7e) {
      throw new ProxyProtocolError('bad-syntax', `PROXY v1 line has a non-printable byte at offset ${i}`);
    }
  }
  if (lf < 0) {
    checkProtocolPrefix(buf.subarray(proxyV1Prefix.length, scan));
    if (buf.length >= limit) throw new ProxyProtocolError('too-long', `PROXY v1 line longer than ${limit} bytes`);
    return { status: 'incomplete' };
  }
  const line = buf.toString('latin1', 0, lf - 1);
  return { status: 'ok', consumed: lf + 1, header: parseLine(line) };
}

/** Fails early when the word after "PROXY " cannot become TCP4, TCP6 or UNKNOWN. */
function checkProtocolPrefix(rest: Buffer): void {
  if (rest.length === 0) return;
  if (protocols.some((p) => matchesPrefix(rest, p))) return;
  throw new ProxyProtocolError('bad-family', 'PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN');
}

function parseLine(line: string): ProxyHeader {
  const fields = line.split(' ');
  const protocol = fields[1];
  if (protocol === 'UNKNOWN') return unknownHeader();
  if (protocol !== 'TCP4' && protocol !== 'TCP6') {
    throw new ProxyProtocolError('bad-family', 'PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN');
  }
  if (fields.length !== 6) {
    throw new ProxyProtocolError('bad-syntax', 'PROXY v1 line must have exactly 6 single-space separated fields');
  }
  const v4 = protocol === 'TCP4';
  return {
    version: 1,
    command: 'PROXY',
    family: v4 ? 'inet' : 'inet6',
    transport: 'stream',
    source: endpoint(fields[2], fields[4], v4, 'source'),
    destination: endpoint(fields[3], fields[5], v4, 'destination'),
    tlvs: [],
    crc32cVerified: false,
  };
}

/** "UNKNOWN": the proxy could not tell; whatever follows it on the line is ignored. */
function unknownHeader(): ProxyHeader {
  return { version: 1, command: 'PROXY', family: 'unspec', transport: 'unspec', tlvs: [], crc32cVerified: false };
}

function endpoint(addressText: string, portText: string, v4: boolean, which: string): ProxyAddress {
  let address: string;
  if (v4) {
    const value = parseIpv4Value(addressText);
    if (value < 0) throw new ProxyProtocolError('bad-address', `PROXY v1 ${which} is not an IPv4 address`);
    address = formatIpv4(value);
  } else {
    const words = parseIpv6Words(addressText);
    if (words === null) throw new ProxyProtocolError('bad-address', `PROXY v1 ${which} is not an IPv6 address`);
    address = formatIpv6(words);
  }
  if (!/^(0|[1-9][0-9]{0,4})$/.test(portText) || Number(portText) > 65535) {
    throw new ProxyProtocolError('bad-address', `PROXY v1 ${which} port is not 0–65535`);
  }
  return { address, port: Number(portText) };
}

/** A v1 header line: TCP4/TCP6 chosen from the source address; null endpoints → UNKNOWN. */
export function buildProxyV1(endpoints: { source: ProxyAddress; destination: ProxyAddress } | null): Buffer {
  if (endpoints === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const { source, destination } = endpoints;
  const v4 = parseIpv4Value(source.address) >= 0;
  const line = `PROXY ${v4 ? 'TCP4' : 'TCP6'} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`;
  return Buffer.from(line, 'latin1');
}
