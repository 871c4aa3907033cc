// IP addresses as the network layer sees them: parsed once, compared as integers.
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
// client) is the IPv4 address: it is judged, shown and stored as IPv4.

import { formatIpv4, formatIpv6, parseIpv4Value, parseIpv6Words, type Ipv6Words } from './ip-text.js';

export interface ParsedIpv4 {
  readonly family: 4;
  /** Unsigned 32-bit integer. */
  readonly value: number;
}

export interface ParsedIpv6 extends Ipv6Words {
  readonly family: 6;
}

export type ParsedIp = ParsedIpv4 | ParsedIpv6;

/** Parses IPv4 or IPv6 text strictly; IPv4-mapped IPv6 becomes IPv4. Null when invalid. */
export function parseIp(text: string): ParsedIp | null {
  const v4 = parseIpv4Value(text);
  if (v4 >= 0) return { family: 4, value: v4 };
  const w = parseIpv6Words(text);
  if (w === null) return null;
  if (w.w0 === 0 && w.w1 === 0 && w.w2 === 0xffff) return { family: 4, value: w.w3 };
  return { family: 6, w0: w.w0, w1: w.w1, w2: w.w2, w3: w.w3 };
}

/** Canonical text: dotted quad for IPv4, RFC 5952 for IPv6. */
export function formatIp(ip: ParsedIp): string {
  return ip.family === 4 ? formatIpv4(ip.value) : formatIpv6(ip);
}

/** A totally ordered key within one family: uint32 number for IPv4, 128-bit bigint for IPv6. */
export function ipToKey(ip: ParsedIp): number | bigint {
  if (ip.family === 4) return ip.value;
  return (BigInt(ip.w0) << 96n) | (BigInt(ip.w1) << 64n) | (BigInt(ip.w2) << 32n) | BigInt(ip.w3);
}

export function ipv6FromBigint(key: bigint): ParsedIpv6 {
  const m = 0xffffffffn;
  return {
    family: 6,
    w0: Number((key >> 96n) & m),
    w1: Number((key >> 64n) & m),
    w2: Number((key >> 32n) & m),
    w3: Number(key & m),
  };
}

/** Compares two addresses of the same family: negative, 0 or positive. */
export function compareIp(a: ParsedIp, b: ParsedIp): number {
  if (a.family !== b.family) throw new TypeError('cannot compare addresses of different families');
  if (a.family === 4) return a.value - (b as ParsedIpv4).value;
  const c = b as ParsedIpv6;
  return a.w0 - c.w0 || a.w1 - c.w1 || a.w2 - c.w2 || a.w3 - c.w3;
}

// ---- Validators for the control plane: an error message naming the field, or null. ----

/** Firewall rule range: both valid, same family (IPv4-mapped counts as IPv4), start ≤ end. */
export function validateIpRange(startIpAddress: string, endIpAddress: string): string | null {
  const start = parseIp(startIpAddress);
  if (start === null) return `startIpAddress "${startIpAddress}" is not a valid IPv4 or IPv6 address`;
  const end = parseIp(endIpAddress);
  if (end === null) return `endIpAddress "${endIpAddress}" is not a valid IPv4 or IPv6 address`;
  if (start.family !== end.family) {
    return (
      `startIpAddress "${startIpAddress}" is IPv${start.family} but endIpAddress "${endIpAddress}" is ` +
      `IPv${end.family}: both must be the same family (IPv4-mapped IPv6 counts as IPv4)`
    );
  }
  if (compareIp(start, end) > 0) {
    return `startIpAddress "${startIpAddress}" must be less than or equal to endIpAddress "${endIpAddress}"`;
  }
  return null;
}

const ruleNamePattern = /^[A-Za-z0-9_-]{1,128}$/;

/** Rule names: 1–128 of ASCII letters, digits, "-" and "_". */
export function validateRuleName(name: string): string | null {
  if (ruleNamePattern.test(name)) return null;
  if (name.length === 0) return 'rule name must not be empty';
  if (name.length > 128) return `rule name is ${name.length} characters long: at most 128 are allowed`;
  return `rule name "${name}" may only contain letters, digits, "-" and "_"`;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly prefixLength: number;
  /** First and last address of the block. */
  readonly first: ParsedIp;
  readonly last: ParsedIp;
}

/** Parses "address/prefix" with the host bits zero; returns an error message on failure. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  if (slash < 0) return `"${text}" is not in CIDR notation (address/prefix)`;
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const v4 = parseIpv4Value(addressText);
  const v6 = v4 >= 0 ? null : parseIpv6Words(addressText);
  if (v4 < 0 && v6 === null) return `"${addressText}" in "${text}" is not a valid IPv4 or IPv6 address`;
  if (v6 !== null && v6.w0 === 0 && v6.w1 === 0 && v6.w2 === 0xffff) {
    return `"${text}" uses an IPv4-mapped IPv6 address: write the IPv4 block instead`;
  }
  const bits = v4 >= 0 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return `prefix length "${prefixText}" in "${text}" must be an integer from 0 to ${bits}`;
  }
  const prefixLength = Number(prefixText);
  if (v4 >= 0) {
    const hostMask = prefixLength === 0 ? 0xffffffff : 2 ** (32 - prefixLength) - 1;
    const first = v4 - (v4 % (hostMask + 1));
    if (first !== v4) return `"${text}" has host bits set: the block starts at ${formatIpv4(first)}/${prefixLength}`;
    return { family: 4, prefixLength, first: { family: 4, value: v4 }, last: { family: 4, value: v4 + hostMask } };
  }
  const key = ipToKey({ family: 6, ...(v6 as Ipv6Words) }) as bigint;
  const hostMask = (1n << BigInt(128 - prefixLength)) - 1n;
  if ((key & hostMask) !== 0n) {
    const start = formatIpv6(ipv6FromBigint(key & ~hostMask));
    return `"${text}" has host bits set: the block starts at ${start}/${prefixLength}`;
  }
  return { family: 6, prefixLength, first: ipv6FromBigint(key), last: ipv6FromBigint(key | hostMask) };
}

export function validateCidr(text: string): string | null {
  const parsed = parseCidr(text);
  return typeof parsed === 'string' ? parsed : null;
}

/** True when ip lies inside the block (families must match; IPv4 is never inside IPv6). */
export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  return compareIp(cidr.first, ip) <= 0 && compareIp(ip, cidr.last) <= 0;
}
