// The client's side of a connection the native relay addon took over, as a Duplex over its
// plaintext (TLS terminated in the addon): steps 3–8 (Wire, login, SCRAM, token login, the
// refusals) run over it unchanged. It behaves like a socket: 'data' until 'end', 'close' once the
// addon forgot the connection, 'error' only where a socket would have one (a reset, a TLS alert,
// a framing error). Reading is paused in the addon when the stream's buffer is full. At step 9
// `freeze()` stops reading and returns what came after the handshake's last packet, and the
// session takes the connection's events over (session.ts).
import { Duplex } from 'node:stream';
import type net from 'node:net';
import { DRAIN_ABOVE, type AddonEvent } from './addon.js';
import type { NativeRelayHost } from './host.js';

export type HelloEvent = Extract<AddonEvent, { type: 'hello' }>;
export type SecureEvent = Extract<AddonEvent, { type: 'secure' }>;
export type ClosedEvent = Extract<AddonEvent, { type: 'closed' }>;

export class NativeClientSocket extends Duplex {
  readonly id: number;
  private paused = false;
  /** The addon's 'closed' event, once it came. */
  private closedEvent: ClosedEvent | null = null;
  /** Set by freeze(): 'data' is collected here until 'frozen'. */
  private freezing: { chunks: Buffer[]; done: (rest: Buffer | null) => void } | null = null;
  /** Handed to the session (relay): the Duplex no longer drives the connection. */
  private relayed = false;
  /** The callback of a write the addon has not put on the socket yet (backpressure: the
   * stream buffers what comes next, and write() returns false, until 'drain'). */
  private drained: (() => void) | null = null;
  /** After handOver: destroy() ends the relayed session this way (the gateway closing). */
  private endRelayed: (() => void) | null = null;

  constructor(
    readonly host: NativeRelayHost,
    fd: number,
    prefix: Buffer,
    tls: 'starttls' | 'direct' | 'none',
  ) {
    super({ allowHalfOpen: true, emitClose: true });
    // As for the raw socket (connection.ts): an error only ends this connection.
    this.on('error', () => undefined);
    this.id = host.adopt(fd, prefix, tls, (e) => this.onEvent(e));
  }

  private onEvent(e: AddonEvent): void {
    switch (e.type) {
      case 'hello':
        this.emit('hello', e);
        return;
      case 'secure':
        this.emit('secure', e);
        return;
      case 'data':
        if (this.freezing) {
          this.freezing.chunks.push(e.data);
          return;
        }
        if (!this.push(e.data) && !this.paused) {
          this.paused = true;
          this.host.addon.pause(this.id, true);
        }
        return;
      case 'end':
        this.push(null);
        return;
      case 'drain': {
        const d = this.drained;
        this.drained = null;
        d?.();
        return;
      }
      case 'frozen': {
        const f = this.freezing;
        this.freezing = null;
        f?.done(Buffer.concat(f.chunks));
        return;
      }
      case 'closed':
        this.onClosed(e);
        return;
      case 'observe':
        return; // only after relay(), routed to the session
    }
  }

  private onClosed(e: ClosedEvent): void {
    this.closedEvent = e;
    const d = this.drained;
    this.drained = null;
    d?.();
    const f = this.freezing;
    this.freezing = null;
    f?.done(null);
    if (this.destroyed) return;
    // A reset or a TLS alert is an error on a socket too; an orderly close ends the stream.
    if (e.error !== null) this.destroy(Object.assign(new Error(e.error), { code: 'ECONNRESET' }));
    else {
      this.push(null);
      this.destroy();
    }
  }

  /** The addon's 'closed' event, once the connection is over (null while it is open). */
  get ended(): ClosedEvent | null {
    return this.closedEvent;
  }

  override _read(): void {
    if (this.paused && !this.relayed && this.closedEvent === null) {
      this.paused = false;
      this.host.addon.pause(this.id, false);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.closedEvent !== null || this.relayed) return callback(); // a socket that closed drops it too
    if (this.host.addon.write(this.id, chunk) > DRAIN_ABOVE) this.drained = () => callback();
    else callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.closedEvent === null && !this.relayed) this.host.addon.end(this.id);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.closedEvent === null) {
      if (!this.relayed) this.host.addon.destroy(this.id);
      else this.endRelayed?.();
    }
    callback(error);
  }

  /**
   * Stops reading from the client (step 9): resolves with the client bytes that arrived after
   * the ones the stream delivered or buffered (buffered ones included, in order), or null when
   * the connection closed meanwhile.
   */
  freeze(): Promise<Buffer | null> {
    if (this.closedEvent !== null) return Promise.resolve(null);
    return new Promise((resolve) => {
      const buffered: Buffer[] = [];
      this.pause();
      for (let c = this.read() as Buffer | null; c !== null; c = this.read() as Buffer | null) buffered.push(c);
      this.freezing = {
        chunks: buffered,
        done: (rest) => resolve(rest),
      };
      this.host.addon.freeze(this.id);
    });
  }

  /** Hands the connection to the session: its events go to `handler` from now on, and the
   * Duplex no longer writes to it or ends it; destroy() calls `end` (the session's terminate). */
  handOver(handler: (event: AddonEvent) => void, end: () => void): void {
    this.relayed = true;
    this.endRelayed = end;
    this.host.route(this.id, (e) => {
      if (e.type === 'closed') this.closedEvent = e;
      handler(e);
      if (e.type === 'closed' && !this.destroyed) this.destroy();
    });
  }
}

/**
 * The raw socket of a connection the addon took over: its own descriptor is closed (the addon
 * holds a duplicate), and it stands for the native connection towards whoever holds it (the
 * gateway's accept bookkeeping, its close(), the first-byte and handshake timers): its 'close'
 * listeners run when the native connection closes, and destroying it closes the native one.
 */
export function standIn(raw: net.Socket, native: NativeClientSocket): void {
  const onClose = raw.listeners('close') as ((...args: unknown[]) => void)[];
  raw.removeAllListeners('close');
  raw.destroy();
  raw.destroy = (err?: Error) => {
    native.destroy(err);
    return raw;
  };
  native.once('close', () => {
    for (const l of onClose) l.call(raw, false);
  });
}
