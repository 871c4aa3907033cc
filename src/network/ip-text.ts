// Strict, allocation-light IP address text codecs for the connection hot path.
//
// Why not ipaddr.js here: its IPv6 parser costs ~1 µs per call (regex based), accepts zone ids
// ("fe80::1%eth0") and leading zeros in an embedded IPv4 tail, and reads the IPv4-compatible
// form "::1.2.3.4" as the IPv4-mapped "::ffff:1.2.3.4". These parsers accept exactly RFC 4291
// §2.2 text (IPv6) and strict dotted-quad decimal (IPv4); the unit tests cross-check them
// against ipaddr.js on every address both agree is valid.

export interface Ipv6Words {
  /** The 128-bit address as four big-endian 32-bit words, each an unsigned integer. */
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
}

/**
 * Parses strict dotted-quad IPv4 ("0.0.0.0" – "255.255.255.255", no leading zeros, no other
 * forms) from text[start, end). Returns the address as an unsigned 32-bit integer, or -1.
 */
export function parseIpv4Value(text: string, start = 0, end = text.length): number {
  if (end - start < 7 || end - start > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (part > 255) return -1;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

const groups = new Int32Array(8);

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses RFC 4291 IPv6 text: 1–4 hex digits per group, at most one "::", an optional strict
 * dotted-quad tail in the last 32 bits. No zone ids, no brackets. Returns null when invalid.
 * IPv4-mapped addresses are returned as they are (not converted to IPv4).
 */
export function parseIpv6Words(text: string): Ipv6Words | null {
  const len = text.length;
  if (len < 2 || len > 45) return null;
  let count = 0;
  let gap = -1; // group index where "::" stands
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return null;
    gap = 0;
    i = 2;
  }
  while (i < len) {
    const groupStart = i;
    let value = 0;
    let digits = 0;
    while (i < len && digits < 5) {
      const d = hexDigit(text.charCodeAt(i));
      if (d < 0) break;
      value = value * 16 + d;
      digits++;
      i++;
    }
    if (i < len && text.charCodeAt(i) === 46) {
      // Dotted-quad tail: the rest of the text is an IPv4 address filling two groups.
      if (count > 6) return null;
      const v4 = parseIpv4Value(text, groupStart, len);
      if (v4 < 0) return null;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = len;
      break;
    }
    if (digits === 0 || digits > 4 || count === 8) return null;
    groups[count++] = value;
    if (i === len) break;
    if (text.charCodeAt(i) !== 58) return null;
    if (i + 1 < len && text.charCodeAt(i + 1) === 58) {
      if (gap >= 0) return null;
      gap = count;
      i += 2;
    } else {
      i += 1;
      if (i === len) return null; // trailing single ":"
    }
  }
  if (gap < 0) {
    if (count !== 8) return null;
  } else {
    if (count > 7) return null;
    const zeros = 8 - count;
    for (let k = count - 1; k >= gap; k--) groups[k + zeros] = groups[k];
    for (let k = gap; k < gap + zeros; k++) groups[k] = 0;
  }
  return {
    w0: (groups[0] * 0x10000 + groups[1]) >>> 0,
    w1: (groups[2] * 0x10000 + groups[3]) >>> 0,
    w2: (groups[4] * 0x10000 + groups[5]) >>> 0,
    w3: (groups[6] * 0x10000 + groups[7]) >>> 0,
  };
}

export function formatIpv4(value: number): string {
  return `${(value >>> 24) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/**
 * RFC 5952 text: lower case, no leading zeros, the longest run (first on ties) of two or more
 * zero groups shortened to "::". IPv4-mapped addresses are written "::ffff:a.b.c.d".
 */
export function formatIpv6(ip: Ipv6Words): string {
  if (ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0xffff) return `::ffff:${formatIpv4(ip.w3)}`;
  const g = [ip.w0 >>> 16, ip.w0 & 0xffff, ip.w1 >>> 16, ip.w1 & 0xffff, ip.w2 >>> 16, ip.w2 & 0xffff, ip.w3 >>> 16, ip.w3 & 0xffff];
  let bestStart = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let end = k;
    while (end < 8 && g[end] === 0) end++;
    if (end - k > bestLen) {
      bestStart = k;
      bestLen = end - k;
    }
    k = end;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g
    .slice(0, bestStart)
    .map((x) => x.toString(16))
    .join(':');
  const tail = g
    .slice(bestStart + bestLen)
    .map((x) => x.toString(16))
    .join(':');
  return `${head}::${tail}`;
}
