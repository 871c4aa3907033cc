// Buffer's own encoders, called directly: Buffer#write(string, offset, length, encoding) parses its
// arguments and looks the encoding up on every call, which the writer thread pays several times
// per record for short strings (about 0.03 µs each). Node's Buffer has had these methods on its
// prototype since v6; were they ever missing, Buffer#write does the same.

interface Encoders {
  latin1Write(text: string, offset: number, length: number): number;
  utf8Write(text: string, offset: number, length: number): number;
  hexWrite(text: string, offset: number, length: number): number;
}

const proto = Buffer.prototype as unknown as Partial<Encoders>;
const direct = typeof proto.latin1Write === 'function' && typeof proto.utf8Write === 'function' && typeof proto.hexWrite === 'function';

/** buf.write(text, offset, length, 'latin1'): bytes written (the characters must be below U+0100). */
export const latin1Write: (buf: Buffer, text: string, offset: number, length: number) => number = direct
  ? (buf, text, offset, length) => (buf as unknown as Encoders).latin1Write(text, offset, length)
  : (buf, text, offset, length) => buf.write(text, offset, length, 'latin1');

/** buf.write(text, offset, length, 'utf8'): bytes written (whole characters only). */
export const utf8Write: (buf: Buffer, text: string, offset: number, length: number) => number = direct
  ? (buf, text, offset, length) => (buf as unknown as Encoders).utf8Write(text, offset, length)
  : (buf, text, offset, length) => buf.write(text, offset, length, 'utf8');

/** buf.write(text, offset, length, 'hex'): bytes written (stops at the first pair that is not hex). */
export const hexWrite: (buf: Buffer, text: string, offset: number, length: number) => number = direct
  ? (buf, text, offset, length) => (buf as unknown as Encoders).hexWrite(text, offset, length)
  : (buf, text, offset, length) => buf.write(text, offset, length, 'hex');
