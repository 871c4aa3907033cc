// PROXY protocol version 2: binary.
//   0..11  signature   12  version(4 bits)=2 | command(4 bits): 0 LOCAL, 1 PROXY
//   13     family(4 bits) | transport(4 bits)   14..15  length of the rest, big endian
//   16..   address block (INET 12, INET6 36, UNIX 216, UNSPEC 0 bytes), then TLVs.
// Only the seven family/transport bytes the spec defines are accepted. For LOCAL the address
// block is skipped (the spec says to discard it) but its length is still checked and the TLVs
// are still walked and verified.

import { formatIpv4, formatIpv6 } from '../../network/ip-text.js';
import { crc32cUpdate, crc32cZeros } from './crc32c.js';
import { ProxyProtocolError } from './errors.js';
import { matchesPrefix, proxyV2Signature } from './signature.js';
import { decodeKnownTlvs, walkTlvs } from './tlv.js';
import type { ProxyAddress, ProxyFamily, ProxyHeader, ProxyParseResult, ProxyTransport } from './types.js';

export const proxyV2FixedBytes = 16;

const families: Record<number, [ProxyFamily, ProxyTransport, number]> = {
  0x00: ['unspec', 'unspec', 0],
  0x11: ['inet', 'stream', 12],
  0x12: ['inet', 'dgram', 12],
  0x21: ['inet6', 'stream', 36],
  0x22: ['inet6', 'dgram', 36],
  0x31: ['unix', 'stream', 216],
  0x32: ['unix', 'dgram', 216],
};

export function parseProxyV2(buf: Buffer, maxHeaderBytes: number): ProxyParseResult {
  if (!matchesPrefix(buf, proxyV2Signature)) throw new ProxyProtocolError('bad-signature', 'not a PROXY protocol header');
  if (buf.length > 12) {
    const version = buf[12] >> 4;
    if (version !== 2) throw new ProxyProtocolError('bad-version', `PROXY v2 version nibble is ${version}, not 2`);
    if ((buf[12] & 0x0f) > 1) throw new ProxyProtocolError('bad-command', `PROXY v2 command ${buf[12] & 0x0f} is neither LOCAL nor PROXY`);
  }
  if (buf.length > 13 && families[buf[13]] === undefined) {
    throw new ProxyProtocolError('bad-family', `PROXY v2 family/transport byte 0x${buf[13].toString(16)} is not defined`);
  }
  if (buf.length < proxyV2FixedBytes) return { status: 'incomplete' };
  const length = buf.readUInt16BE(14);
  const total = proxyV2FixedBytes + length;
  if (total > maxHeaderBytes) {
    throw new ProxyProtocolError('too-long', `PROXY v2 header is ${total} bytes, more than the ${maxHeaderBytes} allowed`);
  }
  if (buf.length < total) return { status: 'incomplete' };

  const command = (buf[12] & 0x0f) === 1 ? 'PROXY' : 'LOCAL';
  const [family, transport, addressBytes] = families[buf[13]];
  if (length < addressBytes) {
    throw new ProxyProtocolError('truncated', `PROXY v2 ${family} needs ${addressBytes} address bytes, length is ${length}`);
  }
  const tlvStart = proxyV2FixedBytes + addressBytes;
  const tlvs = walkTlvs(buf, tlvStart, total, 'PROXY v2');
  const known = decodeKnownTlvs(tlvs);
  let crc32cVerified = false;
  if (known.crc32cOffset !== undefined) {
    const at = known.crc32cOffset;
    let crc = crc32cUpdate(0, buf, 0, at);
    crc = crc32cZeros(crc, 4);
    crc = crc32cUpdate(crc, buf, at + 4, total);
    if (crc !== known.crc32cValue) throw new ProxyProtocolError('bad-crc', 'PROXY v2 CRC32C does not match the header');
    crc32cVerified = true;
  }

  const header: { -readonly [K in keyof ProxyHeader]: ProxyHeader[K] } = {
    version: 2,
    command,
    family,
    transport,
    tlvs: tlvs.map(({ type, value }) => ({ type, value })),
    crc32cVerified,
  };
  if (command === 'PROXY' && family !== 'unspec') {
    const [source, destination] = readAddresses(buf, family);
    header.source = source;
    header.destination = destination;
  }
  if (known.azureLinkId !== undefined) header.azureLinkId = known.azureLinkId;
  if (known.awsVpceId !== undefined) header.awsVpceId = known.awsVpceId;
  if (known.alpn !== undefined) header.alpn = known.alpn;
  if (known.authority !== undefined) header.authority = known.authority;
  if (known.uniqueId !== undefined) header.uniqueId = known.uniqueId;
  if (known.ssl !== undefined) header.ssl = known.ssl;
  return { status: 'ok', consumed: total, header };
}

function readAddresses(buf: Buffer, family: ProxyFamily): [ProxyAddress, ProxyAddress] {
  const a = proxyV2FixedBytes;
  if (family === 'inet') {
    return [
      { address: formatIpv4(buf.readUInt32BE(a)), port: buf.readUInt16BE(a + 8) },
      { address: formatIpv4(buf.readUInt32BE(a + 4)), port: buf.readUInt16BE(a + 10) },
    ];
  }
  if (family === 'inet6') {
    return [
      { address: ipv6At(buf, a), port: buf.readUInt16BE(a + 32) },
      { address: ipv6At(buf, a + 16), port: buf.readUInt16BE(a + 34) },
    ];
  }
  return [
    { address: unixPath(buf, a), port: 0 },
    { address: unixPath(buf, a + 108), port: 0 },
  ];
}

function ipv6At(buf: Buffer, o: number): string {
  return formatIpv6({
    w0: buf.readUInt32BE(o),
    w1: buf.readUInt32BE(o + 4),
    w2: buf.readUInt32BE(o + 8),
    w3: buf.readUInt32BE(o + 12),
  });
}

/** A 108-byte sun_path: the bytes up to the first NUL (all 108 if none). */
function unixPath(buf: Buffer, o: number): string {
  let end = o;
  while (end < o + 108 && buf[end] !== 0) end++;
  return buf.toString('utf8', o, end);
}
