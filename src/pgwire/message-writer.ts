// Builds one framed message: fields are collected, then written into a single buffer with the
// length word filled in. Strings are refused if they contain NUL, which would break the framing.

export class MessageWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  int8(value: number): this {
    const b = Buffer.allocUnsafe(1);
    b.writeUInt8(value);
    return this.add(b);
  }

  int16(value: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(value);
    return this.add(b);
  }

  int32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(value);
    return this.add(b);
  }

  /** UTF-8 text followed by a NUL terminator. */
  cstring(text: string): this {
    const b = Buffer.from(text, 'utf8');
    if (b.includes(0)) throw new TypeError('protocol string must not contain a NUL character');
    this.add(b);
    return this.int8(0);
  }

  bytes(data: Uint8Array): this {
    return this.add(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** A typed message: type byte, int32 length (itself included), body. */
  message(type: string): Buffer {
    if (type.length !== 1 || type.charCodeAt(0) > 0x7f) throw new TypeError('message type must be one ASCII character');
    const out = Buffer.allocUnsafe(5 + this.size);
    out.write(type, 0, 'latin1');
    out.writeInt32BE(4 + this.size, 1);
    this.copyInto(out, 5);
    return out;
  }

  /** An untyped startup-phase packet: int32 length (itself included), body. */
  packet(): Buffer {
    const out = Buffer.allocUnsafe(4 + this.size);
    out.writeInt32BE(4 + this.size, 0);
    this.copyInto(out, 4);
    return out;
  }

  private add(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  private copyInto(out: Buffer, offset: number): void {
    for (const part of this.parts) offset += part.copy(out, offset);
  }
}
