// Entry point: parse a PROXY header (v1 or v2) from the first bytes of a connection.

import { ProxyProtocolError } from './errors.js';
import type { ProxyParseResult } from './types.js';
import { parseProxyV1 } from './v1.js';
import { parseProxyV2, proxyV2FixedBytes } from './v2.js';

export interface ProxyParseOptions {
  /** Largest header accepted, v2 fixed part included (v1 is always ≤ 107). Default 4096. */
  readonly maxHeaderBytes?: number;
}

export const defaultMaxHeaderBytes = 4096;
/** The largest a v2 header can be: 16 fixed bytes + a 16-bit length. */
export const absoluteMaxHeaderBytes = proxyV2FixedBytes + 0xffff;

/**
 * Feed it everything received so far. Returns 'incomplete' until the whole header is there,
 * then 'ok' with the bytes it used (what follows belongs to the next protocol: check that it
 * is not a second header with startsWithProxySignature). Reads nothing past the header.
 * Throws ProxyProtocolError as soon as the bytes cannot be a valid header.
 */
export function parseProxyHeader(buf: Buffer, options: ProxyParseOptions = {}): ProxyParseResult {
  const max = options.maxHeaderBytes ?? defaultMaxHeaderBytes;
  if (!Number.isInteger(max) || max < proxyV2FixedBytes || max > absoluteMaxHeaderBytes) {
    throw new RangeError(`maxHeaderBytes must be an integer from ${proxyV2FixedBytes} to ${absoluteMaxHeaderBytes}`);
  }
  if (buf.length === 0) return { status: 'incomplete' };
  if (buf[0] === 0x50) return parseProxyV1(buf, max);
  if (buf[0] === 0x0d) return parseProxyV2(buf, max);
  throw new ProxyProtocolError('bad-signature', 'not a PROXY protocol header');
}
