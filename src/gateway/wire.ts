// A socket seen as a sequence of PostgreSQL packets during the handshake: startup packets
// first, then typed messages. Reads are bounded by the readers' limits; the caller bounds time.
import type { Duplex } from 'node:stream';
import { MessageReader, StartupReader, type WireMessage } from '../pgwire/index.js';

export class ConnectionClosed extends Error {
  constructor() {
    super('connection closed by peer');
  }
}

type Reader = StartupReader | MessageReader;

export class Wire {
  private reader: Reader;
  private waiting: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer) => {
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.failure = err as Error;
    }
    this.wake();
  };
  private readonly onEnd = () => {
    this.failure ??= new ConnectionClosed();
    this.wake();
  };
  private readonly onError = (err: Error) => {
    this.failure ??= err;
    this.wake();
  };

  constructor(
    readonly socket: Duplex,
    kind: 'startup' | 'message',
    private readonly maxMessage?: number,
  ) {
    this.reader = kind === 'startup' ? new StartupReader() : new MessageReader({ maxLength: maxMessage });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  /** Bytes already read from the socket by someone else, to be parsed first. */
  feed(chunk: Buffer): void {
    this.onData(chunk);
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.resolve();
  }

  /** Bytes received and not yet returned as a packet. */
  get buffered(): number {
    return this.reader.buffered;
  }

  private async nextFrame<T>(take: () => T | null): Promise<T> {
    for (;;) {
      const frame = take();
      if (frame !== null) return frame;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => {
        this.waiting = { resolve, reject };
      });
    }
  }

  /** The next whole startup-phase packet (length word included). */
  readStartup(): Promise<Buffer> {
    if (!(this.reader instanceof StartupReader)) throw new Error('wire is reading typed messages');
    const r = this.reader;
    return this.nextFrame(() => r.next());
  }

  /** The next typed message. */
  readMessage(): Promise<WireMessage> {
    if (!(this.reader instanceof MessageReader)) throw new Error('wire is reading startup packets');
    const r = this.reader;
    return this.nextFrame(() => r.next());
  }

  /** From now on, typed messages; bytes already received carry over. */
  switchToMessages(): void {
    const rest = this.reader.rest();
    this.reader = new MessageReader({ maxLength: this.maxMessage });
    if (rest.length) this.reader.push(rest);
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  /** Stops reading; returns what was received and not consumed, for the relay to pass on. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    this.socket.pause();
    return this.reader.rest();
  }
}
