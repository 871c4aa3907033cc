// Lexical helpers for SCRAM messages (RFC 5802 section 7).

import { isUtf8 } from 'node:buffer';
import { ScramError } from './scram-error.js';

/** Largest SCRAM message accepted in either direction. */
export const MAX_SCRAM_MESSAGE = 4096;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Decodes a SCRAM message: bounded, UTF-8, no NUL. */
export function decodeMessage(data: Buffer, what: string): string {
  if (data.length === 0) throw new ScramError(`malformed SCRAM message: empty ${what}`);
  if (data.length > MAX_SCRAM_MESSAGE) throw new ScramError(`malformed SCRAM message: ${what} too long`);
  if (!isUtf8(data) || data.includes(0)) {
    throw new ScramError(`malformed SCRAM message: ${what} is not valid UTF-8 text`);
  }
  return data.toString('utf8');
}

/**
 * The value of `part` if it is the attribute `name`, e.g. attribute('r=abc', 'r') = 'abc'.
 * Empty values are refused unless `allowEmpty`.
 */
export function attribute(part: string | undefined, name: string, what: string, allowEmpty = false): string {
  if (part === undefined || part.length < (allowEmpty ? 2 : 3) || part[0] !== name || part[1] !== '=') {
    throw new ScramError(`malformed SCRAM message: expected attribute "${name}" in ${what}`);
  }
  return part.slice(2);
}

/** An optional extension attribute: one ASCII letter, "=", a value. */
export function checkExtension(part: string, what: string): void {
  if (!/^[A-Za-z]=/.test(part)) throw new ScramError(`malformed SCRAM message: invalid attribute in ${what}`);
}

/** A nonce: one or more printable ASCII characters other than ",". */
export function isPrintable(text: string): boolean {
  return PRINTABLE.test(text);
}

/**
 * Strict base64 decode (padded alphabet only); null when `text` is not base64. With `canonical`,
 * also refuses encodings with non-zero unused bits.
 */
export function decodeBase64(text: string, canonical = true): Buffer | null {
  if (!BASE64.test(text)) return null;
  const out = Buffer.from(text, 'base64');
  return !canonical || out.toString('base64') === text ? out : null;
}
