// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven, one byte at a time.
// Check value: crc32c("123456789") = 0xE3069283.

const table = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  table[n] = c >>> 0;
}

/** Continues a running CRC (pass the previous result; start with 0) over bytes[start, end). */
export function crc32cUpdate(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = ~crc;
  for (let i = start; i < end; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Continues a running CRC over `count` zero bytes. */
export function crc32cZeros(crc: number, count: number): number {
  let c = ~crc;
  for (let i = 0; i < count; i++) c = table[c & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

export function crc32c(bytes: Uint8Array): number {
  return crc32cUpdate(0, bytes);
}
