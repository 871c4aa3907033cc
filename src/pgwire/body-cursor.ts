// A bounds-checked cursor over one message body. Every read checks the remaining length first,
// so malformed input becomes a ProtocolError naming the message, never a RangeError.

import { isUtf8 } from 'node:buffer';
import { protocolViolation, type ProtocolError } from './protocol-error.js';

export class BodyCursor {
  private pos = 0;

  constructor(
    private readonly body: Buffer,
    /** Message name used in error texts, e.g. "SASLInitialResponse". */
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.body.length - this.pos;
  }

  fail(reason: string): ProtocolError {
    return protocolViolation(`invalid ${this.what} message: ${reason}`);
  }

  byte(): number {
    if (this.remaining < 1) throw this.fail('unexpected end of message');
    return this.body[this.pos++]!;
  }

  int32(): number {
    if (this.remaining < 4) throw this.fail('unexpected end of message');
    const value = this.body.readInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  /** `length` bytes, zero-copy. */
  bytes(length: number): Buffer {
    if (length < 0 || length > this.remaining) throw this.fail('length out of bounds');
    const out = this.body.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** Everything left, zero-copy. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** A NUL-terminated UTF-8 string of at most `maxBytes` bytes (terminator excluded). */
  cstring(maxBytes: number, field = 'string'): string {
    const window = this.body.subarray(this.pos, Math.min(this.body.length, this.pos + maxBytes + 1));
    const end = window.indexOf(0);
    if (end < 0) {
      throw this.fail(window.length > maxBytes ? `${field} longer than ${maxBytes} bytes` : `unterminated ${field}`);
    }
    const raw = window.subarray(0, end);
    if (!isUtf8(raw)) throw this.fail(`${field} is not valid UTF-8`);
    this.pos += end + 1;
    return raw.toString('utf8');
  }

  /** Asserts the whole body was consumed. */
  end(): void {
    if (this.remaining !== 0) throw this.fail('unexpected trailing data');
  }
}
