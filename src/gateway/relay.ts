// Step 9: after authentication, bytes flow both ways untouched. Node's pipe gives backpressure
// (a side that cannot take more pauses the other). A close on either side closes the other; a
// server that goes away without saying why while the client still expects it (no Terminate, no
// half-close from the client) gives the client an error, when the stream is at a message
// boundary. Per chunk, only the framing of both directions is followed (no allocation).
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { errorResponse } from '../pgwire/index.js';

/** Follows message boundaries of a typed-message stream without copying it. */
export class FrameTracker {
  private header = 0; // header bytes of the current message seen so far (0..5)
  private lengthBytes = 0; // accumulated length word
  private remaining = 0; // body bytes still to come
  lastType = 0;
  /** A Terminate ('X') began at a message boundary (client direction). */
  terminated = false;

  get atBoundary(): boolean {
    return this.header === 0 && this.remaining === 0;
  }

  advance(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, n - i);
        this.remaining -= take;
        i += take;
        continue;
      }
      if (this.header === 0) {
        this.lastType = chunk[i]!;
        if (this.lastType === TERMINATE) this.terminated = true;
        this.lengthBytes = 0;
      } else {
        this.lengthBytes = (this.lengthBytes * 256 + chunk[i]!) >>> 0;
      }
      i++;
      this.header++;
      if (this.header === 5) {
        this.header = 0;
        this.remaining = Math.max(0, this.lengthBytes - 4);
      }
    }
  }
}

export interface RelayStats {
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

const SERVER_GONE = errorResponse({
  severity: 'FATAL',
  sqlstate: '08006',
  message: 'server closed the connection unexpectedly',
  detail: 'The server process ended while the session was open.',
});
const ERROR_RESPONSE = 'E'.charCodeAt(0);
const TERMINATE = 'X'.charCodeAt(0);

export interface RelayHandle {
  /** Ends the session from the gateway's side: the client gets `error` when the stream is at a
   * message boundary, a plain close otherwise. */
  terminate(error: { sqlstate: string; message: string }): void;
}

/** Something that watches both directions of a session (the statement audit). */
export interface RelayTap {
  fromClient(chunk: Buffer): void;
  fromServer(chunk: Buffer): void;
  end(): void;
}

export function relay(opts: {
  client: Duplex;
  server: net.Socket;
  clientRest: Buffer;
  serverRest: Buffer;
  tap?: RelayTap | null;
  /** Strict audit durability: after each server chunk, a promise to wait for before the client
   * gets it (the statement events it completed are on disk), or null when nothing is pending. */
  hold?: () => Promise<void> | null;
  /** Receives the handle before any byte is fed to the tap, so the tap can end the session
   * (fail closed) even on the bytes that came with the handshake. */
  onHandle?: (handle: RelayHandle) => void;
  onEnd: (stats: RelayStats) => void;
}): RelayHandle {
  const { client, server } = opts;
  const tracker = new FrameTracker();
  // The client's direction too: a session the client ended (Terminate, or its half-close) ends
  // quietly even when the server's close reaches the gateway first.
  const clientTracker = new FrameTracker();
  let clientEnded = false;
  let bytesFromClient = opts.clientRest.length;
  let bytesToClient = opts.serverRest.length;
  let ended = false;
  let clientGone = false;

  const tap = opts.tap ?? null;
  const finish = () => {
    if (ended) return;
    ended = true;
    tap?.end();
    opts.onEnd({ bytesFromClient, bytesToClient });
  };

  // Registered before pipe(): the tap sees each chunk before it is passed on.
  client.on('data', (c: Buffer) => {
    bytesFromClient += c.length;
    clientTracker.advance(c);
    tap?.fromClient(c);
  });
  server.on('data', (c: Buffer) => {
    bytesToClient += c.length;
    tracker.advance(c);
    tap?.fromServer(c);
  });
  client.on('error', () => client.destroy());
  server.on('error', () => server.destroy());
  client.on('close', () => {
    clientGone = true;
    server.destroy();
    finish();
  });
  server.on('close', () => {
    if (!clientGone) {
      const clientExpectedMore = !clientEnded && !clientTracker.terminated;
      if (clientExpectedMore && tracker.atBoundary && tracker.lastType !== ERROR_RESPONSE) client.end(SERVER_GONE);
      else client.end();
    }
    finish();
  });

  const hold = opts.hold;
  const handle: RelayHandle = {
    terminate(error) {
      if (clientGone) return;
      clientGone = true;
      if (!hold) server.unpipe(client);
      server.destroy();
      if (tracker.atBoundary) client.end(errorResponse({ severity: 'FATAL', sqlstate: error.sqlstate, message: error.message }));
      else client.destroy();
    },
  };
  opts.onHandle?.(handle);

  if (opts.serverRest.length) {
    tracker.advance(opts.serverRest);
    tap?.fromServer(opts.serverRest);
    if (!clientGone) client.write(opts.serverRest);
  }
  if (opts.clientRest.length) {
    clientTracker.advance(opts.clientRest);
    tap?.fromClient(opts.clientRest);
    if (!clientGone) server.write(opts.clientRest); // a tap that stopped on them ended the session
  }
  client.on('end', () => {
    clientEnded = true;
    server.end();
  });
  client.pipe(server, { end: false });
  if (!hold) {
    server.pipe(client, { end: false });
  } else {
    // Forwarded by hand so a chunk can wait for the audit log; backpressure as pipe() does it.
    server.on('data', (c: Buffer) => {
      const wait = hold();
      const forward = () => {
        if (clientGone) return;
        if (!client.write(c)) server.pause();
        else if (wait) server.resume();
      };
      if (wait) {
        server.pause();
        void wait.then(forward, forward);
      } else forward();
    });
    client.on('drain', () => server.resume());
    server.resume(); // the handshake left it paused
  }
  return handle;
}
