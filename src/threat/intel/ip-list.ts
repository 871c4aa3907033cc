// Operator lists of suspicious addresses (threat-intelligence feeds, the Tor bulk exit list):
// the pure parser. One IPv4/IPv6 address or CIDR block per line; "#" starts a comment, and so
// does ";" (the Spamhaus DROP layout "1.10.16.0/20 ; SBL256894"); blank lines are skipped. An
// IPv4-mapped IPv6 address counts as its IPv4 address. parseIpList never throws: every line it
// cannot use comes back with its 1-based number and the reason.

import { parseCidr, parseIp, type Cidr } from '../../network/address.js';

export interface IpListEntry {
  readonly line: number;
  /** The address or block as written on the line (comment and blanks removed). */
  readonly text: string;
  readonly cidr: Cidr;
}

export interface IpListLineError {
  readonly line: number;
  /** The line as written, cut to MAX_QUOTED characters. */
  readonly text: string;
  readonly reason: string;
}

export interface ParsedIpList {
  readonly name: string;
  readonly entries: readonly IpListEntry[];
  /** The first MAX_ERRORS_KEPT bad lines; errorCount says how many there were. */
  readonly errors: readonly IpListLineError[];
  readonly errorCount: number;
}

export const MAX_ERRORS_KEPT = 1000;
const MAX_QUOTED = 120;
const MAX_LINE = 512;

export function parseIpList(text: string, name: string): ParsedIpList {
  const entries: IpListEntry[] = [];
  const errors: IpListLineError[] = [];
  let errorCount = 0;
  const bad = (line: number, raw: string, reason: string) => {
    errorCount++;
    if (errors.length < MAX_ERRORS_KEPT) errors.push({ line, text: raw.length > MAX_QUOTED ? `${raw.slice(0, MAX_QUOTED)}…` : raw, reason });
  };
  const body = typeof text === 'string' ? (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) : '';
  let line = 0;
  let pos = 0;
  while (pos <= body.length) {
    let nl = body.indexOf('\n', pos);
    if (nl < 0) nl = body.length;
    line++;
    const raw = body.slice(pos, nl).replace(/\r$/, '');
    pos = nl + 1;
    if (raw.length > MAX_LINE) {
      bad(line, raw, `the line is longer than ${MAX_LINE} characters`);
      continue;
    }
    const hash = raw.indexOf('#');
    const semi = raw.indexOf(';');
    const cut = hash < 0 ? semi : semi < 0 ? hash : Math.min(hash, semi);
    const token = (cut < 0 ? raw : raw.slice(0, cut)).trim();
    if (token === '') continue;
    if (/\s/.test(token)) {
      bad(line, raw, 'expected one address or CIDR block per line');
      continue;
    }
    const cidr = toCidr(token);
    if (typeof cidr === 'string') bad(line, raw, cidr);
    else entries.push({ line, text: token, cidr });
  }
  return { name, entries, errors, errorCount };
}

/** An address becomes a one-address block; returns the reason when the token is neither. */
function toCidr(token: string): Cidr | string {
  if (token.includes('/')) return parseCidr(token);
  const ip = parseIp(token);
  if (ip === null) return `"${token}" is not an IPv4 or IPv6 address or CIDR block`;
  return ip.family === 4 ? { family: 4, prefixLength: 32, first: ip, last: ip } : { family: 6, prefixLength: 128, first: ip, last: ip };
}
