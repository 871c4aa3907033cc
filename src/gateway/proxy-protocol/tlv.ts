// PROXY v2 TLVs: type (1 byte), length (2 bytes, big endian), value. Every length is checked
// against its container; known types are decoded and validated, all are kept raw.

import { ProxyProtocolError } from './errors.js';
import type { ProxySsl, ProxyTlv } from './types.js';

export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_CRC32C = 0x03;
export const PP2_TYPE_NOOP = 0x04;
export const PP2_TYPE_UNIQUE_ID = 0x05;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
export const PP2_SUBTYPE_SSL_CN = 0x22;
export const PP2_SUBTYPE_SSL_CIPHER = 0x23;
export const PP2_SUBTYPE_SSL_SIG_ALG = 0x24;
export const PP2_SUBTYPE_SSL_KEY_ALG = 0x25;
export const PP2_TYPE_NETNS = 0x30;
export const PP2_TYPE_AWS = 0xea;
export const PP2_SUBTYPE_AWS_VPCE_ID = 0x01;
export const PP2_TYPE_AZURE = 0xee;
export const PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID = 0x01;

/** AWS VPC endpoint ids look like "vpce-0123456789abcdef0"; allow up to this many bytes. */
export const maxAwsVpceIdBytes = 128;
export const maxUniqueIdBytes = 128;

export interface PositionedTlv extends ProxyTlv {
  /** Offset of the value in the buffer walked. */
  readonly valueOffset: number;
}

/** Walks buf[start, end) as TLVs; copies values out. Throws 'bad-tlv' on any overrun. */
export function walkTlvs(buf: Buffer, start: number, end: number, what: string): PositionedTlv[] {
  const out: PositionedTlv[] = [];
  let i = start;
  while (i < end) {
    if (end - i < 3) throw new ProxyProtocolError('bad-tlv', `${what}: ${end - i} stray bytes where a TLV header (3 bytes) should be`);
    const type = buf[i];
    const length = buf.readUInt16BE(i + 1);
    const valueOffset = i + 3;
    if (length > end - valueOffset) {
      throw new ProxyProtocolError('bad-tlv', `${what}: TLV 0x${hex(type)} declares ${length} bytes, ${end - valueOffset} remain`);
    }
    out.push({ type, value: Buffer.from(buf.subarray(valueOffset, valueOffset + length)), valueOffset });
    i = valueOffset + length;
  }
  return out;
}

export interface KnownTlvs {
  crc32cOffset?: number;
  crc32cValue?: number;
  azureLinkId?: number;
  awsVpceId?: string;
  alpn?: string;
  authority?: string;
  uniqueId?: Buffer;
  ssl?: ProxySsl;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes the TLVs this gateway understands; a known TLV appearing twice is 'bad-tlv'. */
export function decodeKnownTlvs(tlvs: readonly PositionedTlv[]): KnownTlvs {
  const known: KnownTlvs = {};
  const seen = new Set<string>();
  const once = (key: string): void => {
    if (seen.has(key)) throw new ProxyProtocolError('bad-tlv', `TLV ${key} appears more than once`);
    seen.add(key);
  };
  for (const t of tlvs) {
    const v = t.value;
    switch (t.type) {
      case PP2_TYPE_ALPN:
        once('ALPN');
        if (v.length === 0) throw new ProxyProtocolError('bad-tlv', 'empty ALPN TLV');
        known.alpn = v.toString('latin1');
        break;
      case PP2_TYPE_AUTHORITY:
        once('AUTHORITY');
        known.authority = text(v, 'AUTHORITY', 255);
        break;
      case PP2_TYPE_CRC32C:
        once('CRC32C');
        if (v.length !== 4) throw new ProxyProtocolError('bad-tlv', `CRC32C TLV is ${v.length} bytes, not 4`);
        known.crc32cOffset = t.valueOffset;
        known.crc32cValue = v.readUInt32BE(0);
        break;
      case PP2_TYPE_UNIQUE_ID:
        once('UNIQUE_ID');
        if (v.length > maxUniqueIdBytes) throw new ProxyProtocolError('bad-tlv', `UNIQUE_ID TLV longer than ${maxUniqueIdBytes} bytes`);
        known.uniqueId = v;
        break;
      case PP2_TYPE_SSL:
        once('SSL');
        known.ssl = decodeSsl(v);
        break;
      case PP2_TYPE_AZURE:
        if (v.length === 0) throw new ProxyProtocolError('bad-tlv', 'Azure TLV 0xEE without a subtype');
        if (v[0] === PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID) {
          once('AZURE_LINKID');
          if (v.length !== 5) throw new ProxyProtocolError('bad-tlv', `Azure LinkID TLV value is ${v.length} bytes, not 5`);
          known.azureLinkId = v.readUInt32LE(1);
        }
        break;
      case PP2_TYPE_AWS:
        if (v.length === 0) throw new ProxyProtocolError('bad-tlv', 'AWS TLV 0xEA without a subtype');
        if (v[0] === PP2_SUBTYPE_AWS_VPCE_ID) {
          once('AWS_VPCE_ID');
          known.awsVpceId = vpceId(v);
        }
        break;
      default:
        break; // NOOP, NETNS and anything else: kept raw only.
    }
  }
  return known;
}

function vpceId(v: Buffer): string {
  const n = v.length - 1;
  if (n < 1 || n > maxAwsVpceIdBytes) {
    throw new ProxyProtocolError('bad-tlv', `AWS VPC endpoint id must be 1–${maxAwsVpceIdBytes} bytes, is ${n}`);
  }
  for (let i = 1; i < v.length; i++) {
    if (v[i] < 0x21 || v[i] > 0x7e) throw new ProxyProtocolError('bad-tlv', 'AWS VPC endpoint id is not printable ASCII');
  }
  return v.toString('latin1', 1);
}

function text(v: Buffer, what: string, max: number): string {
  if (v.length === 0 || v.length > max) throw new ProxyProtocolError('bad-tlv', `${what} TLV must be 1–${max} bytes`);
  try {
    return utf8.decode(v);
  } catch {
    throw new ProxyProtocolError('bad-tlv', `${what} TLV is not valid UTF-8`);
  }
}

function decodeSsl(v: Buffer): ProxySsl {
  if (v.length < 5) throw new ProxyProtocolError('bad-tlv', `SSL TLV is ${v.length} bytes, at least 5 needed`);
  const subs = walkTlvs(v, 5, v.length, 'SSL TLV');
  const ssl: { -readonly [K in keyof ProxySsl]: ProxySsl[K] } = {
    client: v[0],
    verify: v.readUInt32BE(1),
    tlvs: subs.map(({ type, value }) => ({ type, value })),
  };
  for (const s of subs) {
    const value = s.value.toString('utf8');
    if (s.type === PP2_SUBTYPE_SSL_VERSION) ssl.version = value;
    else if (s.type === PP2_SUBTYPE_SSL_CN) ssl.commonName = value;
    else if (s.type === PP2_SUBTYPE_SSL_CIPHER) ssl.cipher = value;
    else if (s.type === PP2_SUBTYPE_SSL_SIG_ALG) ssl.signatureAlgorithm = value;
    else if (s.type === PP2_SUBTYPE_SSL_KEY_ALG) ssl.keyAlgorithm = value;
  }
  return ssl;
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}
