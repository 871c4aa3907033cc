// Frames read from a socket through an incremental reader, as promises (test helper).

import type net from 'node:net';

/** Frames from a socket through a reader, as promises. */
export class Frames<T> {
  private readonly queue: T[] = [];
  private failure: Error | null = null;
  private waiter: (() => void) | null = null;
  private readonly onData = (chunk: Buffer): void => {
    try {
      this.reader.push(chunk);
      for (let f = this.reader.next(); f !== null; f = this.reader.next()) this.queue.push(f);
    } catch (err) {
      this.failure = err as Error;
    }
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.failure ??= new Error('connection closed');
    this.wake();
  };

  constructor(
    private readonly socket: net.Socket,
    readonly reader: { push(c: Buffer): void; next(): T | null; rest(): Buffer },
  ) {
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('error', this.onEnd);
  }

  async next(): Promise<T> {
    for (;;) {
      const frame = this.queue.shift();
      if (frame !== undefined) return frame;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
    return this.reader.rest();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}
