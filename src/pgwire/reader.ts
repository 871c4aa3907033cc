// Incremental readers for the two framings of the PostgreSQL protocol:
//   StartupReader: int32 length (itself included) + payload, no type byte (SSLRequest,
//                  GSSENCRequest, CancelRequest, StartupMessage);
//   MessageReader: 1-byte type + int32 length (itself included) + body.
// Usage: reader.push(chunk); for (const m of reader) { ... }   (or next() until null)

import { MAX_PREAUTH_MESSAGE_LENGTH, MAX_STARTUP_PACKET_LENGTH } from './codes.js';
import { FramedReader } from './framed-reader.js';
import { protocolViolation } from './protocol-error.js';

export interface ReaderOptions {
  /** Largest accepted length word (StartupReader default 10000, MessageReader default 1 MiB). */
  readonly maxLength?: number;
}

/** One typed message; `body` excludes the type byte and the length word. */
export interface WireMessage {
  /** The type byte as a one-character string, e.g. 'p'. */
  readonly type: string;
  readonly body: Buffer;
}

/** Yields whole startup-phase packets (length word included), ready for parseStartupPacket. */
export class StartupReader extends FramedReader<Buffer> {
  private readonly maxLength: number;

  constructor(options: ReaderOptions = {}) {
    const maxLength = options.maxLength ?? MAX_STARTUP_PACKET_LENGTH;
    super(4, maxLength);
    this.maxLength = maxLength;
  }

  protected frameSize(byteAt: (i: number) => number): number {
    const length = int32(byteAt, 0);
    if (length < 8 || length > this.maxLength) throw protocolViolation('invalid length of startup packet');
    return length;
  }

  protected decode(frame: Buffer): Buffer {
    return frame;
  }
}

/** Yields typed messages. */
export class MessageReader extends FramedReader<WireMessage> {
  private readonly maxLength: number;

  constructor(options: ReaderOptions = {}) {
    const maxLength = options.maxLength ?? MAX_PREAUTH_MESSAGE_LENGTH;
    super(5, maxLength + 1);
    this.maxLength = maxLength;
  }

  protected frameSize(byteAt: (i: number) => number): number {
    const length = int32(byteAt, 1);
    if (length < 4) throw protocolViolation(`invalid message length: ${length}`);
    if (length > this.maxLength) {
      throw protocolViolation(`message length ${length} exceeds the limit of ${this.maxLength} bytes`);
    }
    return length + 1;
  }

  protected decode(frame: Buffer): WireMessage {
    return { type: String.fromCharCode(frame[0]!), body: frame.subarray(5) };
  }
}

function int32(byteAt: (i: number) => number, at: number): number {
  return (byteAt(at) << 24) | (byteAt(at + 1) << 16) | (byteAt(at + 2) << 8) | byteAt(at + 3);
}
