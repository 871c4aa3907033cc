// Crafting PROXY v2 headers: for tests, and for anything that must speak to a PROXY listener.

import { parseIpv4Value, parseIpv6Words } from '../../network/ip-text.js';
import { crc32c } from './crc32c.js';
import { proxyV2Signature } from './signature.js';
import { PP2_SUBTYPE_AWS_VPCE_ID, PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID, PP2_TYPE_AWS, PP2_TYPE_AZURE, PP2_TYPE_CRC32C } from './tlv.js';
import type { ProxyAddress, ProxyCommand, ProxyFamily, ProxyTlv, ProxyTransport } from './types.js';

export interface ProxyV2Options {
  readonly command: ProxyCommand;
  /** Default: from the source address (inet/inet6), or unspec without addresses. */
  readonly family?: ProxyFamily;
  /** Default: stream, or unspec when the family is unspec. */
  readonly transport?: ProxyTransport;
  readonly source?: ProxyAddress;
  readonly destination?: ProxyAddress;
  readonly tlvs?: readonly ProxyTlv[];
  /** Append a PP2_TYPE_CRC32C TLV holding the checksum of the whole header. */
  readonly withCrc32c?: boolean;
}

const familyNibble: Record<ProxyFamily, number> = { unspec: 0, inet: 1, inet6: 2, unix: 3 };
const transportNibble: Record<ProxyTransport, number> = { unspec: 0, stream: 1, dgram: 2 };
const addressBytes: Record<ProxyFamily, number> = { unspec: 0, inet: 12, inet6: 36, unix: 216 };

/** Builds a v2 header. Throws TypeError on addresses that do not fit the family. */
export function buildProxyV2(options: ProxyV2Options): Buffer {
  const { source, destination } = options;
  const family = options.family ?? (source === undefined ? 'unspec' : parseIpv4Value(source.address) >= 0 ? 'inet' : 'inet6');
  const transport = options.transport ?? (family === 'unspec' ? 'unspec' : 'stream');
  const tlvs = options.tlvs ?? [];
  const crcBytes = options.withCrc32c ? 7 : 0;
  const tlvBytes = tlvs.reduce((n, t) => n + 3 + t.value.length, 0) + crcBytes;
  const length = addressBytes[family] + tlvBytes;
  if (length > 0xffff) throw new TypeError(`PROXY v2 header body of ${length} bytes exceeds 65535`);
  const buf = Buffer.alloc(16 + length);
  proxyV2Signature.copy(buf, 0);
  buf[12] = 0x20 | (options.command === 'PROXY' ? 1 : 0);
  buf[13] = (familyNibble[family] << 4) | transportNibble[transport];
  buf.writeUInt16BE(length, 14);
  if (family !== 'unspec') {
    if (source === undefined || destination === undefined) throw new TypeError(`family ${family} needs source and destination`);
    writeAddresses(buf, family, source, destination);
  }
  let o = 16 + addressBytes[family];
  for (const t of tlvs) {
    if (t.value.length > 0xffff) throw new TypeError('TLV value longer than 65535 bytes');
    buf[o] = t.type;
    buf.writeUInt16BE(t.value.length, o + 1);
    buf.set(t.value, o + 3);
    o += 3 + t.value.length;
  }
  if (options.withCrc32c) {
    buf[o] = PP2_TYPE_CRC32C;
    buf.writeUInt16BE(4, o + 1);
    buf.writeUInt32BE(crc32c(buf), o + 3); // computed while the value bytes are still zero
  }
  return buf;
}

function writeAddresses(buf: Buffer, family: ProxyFamily, source: ProxyAddress, destination: ProxyAddress): void {
  const a = 16;
  if (family === 'inet') {
    buf.writeUInt32BE(ipv4(source.address), a);
    buf.writeUInt32BE(ipv4(destination.address), a + 4);
    buf.writeUInt16BE(source.port, a + 8);
    buf.writeUInt16BE(destination.port, a + 10);
  } else if (family === 'inet6') {
    writeIpv6(buf, a, source.address);
    writeIpv6(buf, a + 16, destination.address);
    buf.writeUInt16BE(source.port, a + 32);
    buf.writeUInt16BE(destination.port, a + 34);
  } else {
    writeUnixPath(buf, a, source.address);
    writeUnixPath(buf, a + 108, destination.address);
  }
}

function ipv4(text: string): number {
  const v = parseIpv4Value(text);
  if (v < 0) throw new TypeError(`"${text}" is not an IPv4 address`);
  return v;
}

function writeIpv6(buf: Buffer, o: number, text: string): void {
  const w = parseIpv6Words(text);
  if (w === null) throw new TypeError(`"${text}" is not an IPv6 address`);
  buf.writeUInt32BE(w.w0, o);
  buf.writeUInt32BE(w.w1, o + 4);
  buf.writeUInt32BE(w.w2, o + 8);
  buf.writeUInt32BE(w.w3, o + 12);
}

function writeUnixPath(buf: Buffer, o: number, path: string): void {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length > 108) throw new TypeError('Unix socket path longer than 108 bytes');
  bytes.copy(buf, o);
}

/** Azure Private Link: TLV 0xEE, subtype 0x01, LinkID as uint32 little endian. */
export function azureLinkIdTlv(linkId: number): ProxyTlv {
  const value = Buffer.alloc(5);
  value[0] = PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID;
  value.writeUInt32LE(linkId, 1);
  return { type: PP2_TYPE_AZURE, value };
}

/** AWS PrivateLink: TLV 0xEA, subtype 0x01, the VPC endpoint id in ASCII. */
export function awsVpceIdTlv(vpceId: string): ProxyTlv {
  return { type: PP2_TYPE_AWS, value: Buffer.concat([Buffer.from([PP2_SUBTYPE_AWS_VPCE_ID]), Buffer.from(vpceId, 'latin1')]) };
}
