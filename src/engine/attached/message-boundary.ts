// Where a server's byte stream stands between protocol messages (type byte, Int32 length),
// so the relay only ever adds its own message between two of the server's. The stream starts
// after TLS, with messages from the first byte.
export class MessageBoundary {
  /** Bytes of the current message still to come (0: between messages). */
  private remaining = 0;
  /** A header split across chunks. */
  private header: number[] = [];
  private lastType = 0;

  get atBoundary(): boolean {
    return this.remaining === 0 && this.header.length === 0;
  }

  /** The last whole message was an ErrorResponse (the server said why it ends). */
  get endedWithError(): boolean {
    return this.lastType === 0x45;
  }

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      this.header.push(chunk[i]!);
      i++;
      if (this.header.length === 5) {
        const [t, a, b, c, d] = this.header as [number, number, number, number, number];
        this.lastType = t;
        this.remaining = Math.max(0, ((a << 24) | (b << 16) | (c << 8) | d) - 4);
        this.header = [];
      }
    }
  }
}
