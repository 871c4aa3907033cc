// SASLprep (RFC 4013) exactly as PostgreSQL applies it to SCRAM passwords (src/common/saslprep.c),
// so a verifier built here matches what libpq and the server compute:
//  - pure ASCII passes unchanged;
//  - invalid UTF-8 -> not preparable;
//  - map: non-ASCII spaces (C.1.2) -> U+0020, B.1 -> nothing; empty result -> not preparable;
//  - normalize: NFKC;
//  - prohibit (C.1.2, C.2.*, C.3-C.9, and A.1 unassigned in Unicode 3.2) and the bidi rules,
//    both checked, as PostgreSQL does, on the mapped code points before normalization.
// When the password cannot be prepared, PostgreSQL (and so scramPasswordBytes) uses the raw bytes.

import { isUtf8 } from 'node:buffer';
import { L_CAT, MAPPED_TO_NOTHING, NON_ASCII_SPACE, PROHIBITED_OUTPUT, RAND_AL_CAT, UNASSIGNED } from './saslprep-tables.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The SASLprep'd password, or null when PostgreSQL would fall back to the raw password. */
export function saslprep(password: string | Buffer): string | null {
  let text: string;
  if (typeof password === 'string') {
    if (LONE_SURROGATE.test(password)) return null; // no UTF-8 form
    text = password;
  } else {
    if (!isUtf8(password)) return null;
    text = password.toString('utf8');
  }
  if (/^[\x00-\x7f]*$/.test(text)) return text;

  const mapped: number[] = [];
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (inTable(code, NON_ASCII_SPACE)) mapped.push(0x20);
    else if (!inTable(code, MAPPED_TO_NOTHING)) mapped.push(code);
  }
  if (mapped.length === 0) return null;

  for (const code of mapped) {
    if (inTable(code, PROHIBITED_OUTPUT) || inTable(code, UNASSIGNED)) return null;
  }
  if (mapped.some((code) => inTable(code, RAND_AL_CAT))) {
    if (mapped.some((code) => inTable(code, L_CAT))) return null;
    if (!inTable(mapped[0]!, RAND_AL_CAT) || !inTable(mapped[mapped.length - 1]!, RAND_AL_CAT)) return null;
  }
  return mapped
    .map((code) => String.fromCodePoint(code))
    .join('')
    .normalize('NFKC');
}

/** The bytes PostgreSQL feeds to PBKDF2 for this password: SASLprep'd, else raw. */
export function scramPasswordBytes(password: string | Buffer): Buffer {
  const prepared = saslprep(password);
  if (prepared !== null) return Buffer.from(prepared, 'utf8');
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : Buffer.from(password);
}

function inTable(code: number, ranges: readonly number[]): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (code < ranges[2 * mid]!) hi = mid - 1;
    else if (code > ranges[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}
