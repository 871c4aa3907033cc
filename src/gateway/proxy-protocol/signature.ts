// The two ways a PROXY header starts.

/** v1: the ASCII text "PROXY " (with the space). */
export const proxyV1Prefix: Buffer = Buffer.from('PROXY ', 'latin1');
/** v2: 12 fixed bytes "\r\n\r\n\0\r\nQUIT\n". */
export const proxyV2Signature: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** True when buf[0, n) equals the first n bytes of sig, n = min(buf.length, sig.length). */
export function matchesPrefix(buf: Uint8Array, sig: Uint8Array): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/**
 * Does buf start with a PROXY header signature? 'v1' / 'v2': the whole signature is there;
 * 'partial': buf is shorter than a signature and is a prefix of one (including empty buf), so
 * more bytes are needed to tell; 'none': it is not a PROXY header.
 * Use it after a header to refuse a second one.
 */
export function startsWithProxySignature(buf: Uint8Array): 'v1' | 'v2' | 'partial' | 'none' {
  if (matchesPrefix(buf, proxyV1Prefix)) return buf.length >= proxyV1Prefix.length ? 'v1' : 'partial';
  if (matchesPrefix(buf, proxyV2Signature)) return buf.length >= proxyV2Signature.length ? 'v2' : 'partial';
  return 'none';
}
