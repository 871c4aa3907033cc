// Step 9: after authentication, bytes flow both ways untouched. Node's pipe gives backpressure
// (a side that cannot take more pauses the other). A close on either side closes the other; a
// server that goes away without saying why while the client still expects it (no Terminate, no
// half-close from the client) gives the client an error, when the stream is at a message
// boundary. Each direction is framed once, by the session's observer, which also hands the
// statement audit and the SQL watch their events; the relay reads the boundaries from it.
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { BackendCode, errorResponse, type SessionObserver } from '../pgwire/index.js';

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

export interface RelayHandle {
  /** Ends the session from the gateway's side: the client gets `error` when the stream is at a
   * message boundary, a plain close otherwise. */
  terminate(error: { sqlstate: string; message: string }): void;
}

export function relay(opts: {
  client: Duplex;
  server: net.Socket;
  clientRest: Buffer;
  serverRest: Buffer;
  /** Frames both directions (once) and hands the session's consumers their events. */
  observer: SessionObserver;
  /** Strict audit durability: after each server chunk, a promise to wait for before the client
   * gets it (the statement events it completed are on disk), or null when nothing is pending. */
  hold?: () => Promise<void> | null;
  /** Receives the handle before any byte is fed to the observer, so a consumer can end the
   * session (fail closed) even on the bytes that came with the handshake. */
  onHandle?: (handle: RelayHandle) => void;
  onEnd: (stats: RelayStats) => void;
}): RelayHandle {
  const { client, server } = opts;
  // Both directions: a session the client ended (Terminate, or its half-close) ends quietly even
  // when the server's close reaches the gateway first.
  const observer = opts.observer;
  let clientEnded = false;
  let bytesFromClient = opts.clientRest.length;
  let bytesToClient = opts.serverRest.length;
  let ended = false;
  let clientGone = false;

  const finish = () => {
    if (ended) return;
    ended = true;
    observer.end();
    opts.onEnd({ bytesFromClient, bytesToClient });
  };

  // Registered before pipe(): the observer sees each chunk before it is passed on.
  client.on('data', (c: Buffer) => {
    bytesFromClient += c.length;
    observer.fromClient(c);
  });
  server.on('data', (c: Buffer) => {
    bytesToClient += c.length;
    observer.fromServer(c);
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
      const clientExpectedMore = !clientEnded && !observer.clientTerminated;
      if (clientExpectedMore && observer.serverAtBoundary && observer.serverLastType !== BackendCode.ErrorResponse) client.end(SERVER_GONE);
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
      if (observer.serverAtBoundary) client.end(errorResponse({ severity: 'FATAL', sqlstate: error.sqlstate, message: error.message }));
      else client.destroy();
    },
  };
  opts.onHandle?.(handle);

  if (opts.serverRest.length) {
    observer.fromServer(opts.serverRest);
    if (!clientGone) client.write(opts.serverRest);
  }
  if (opts.clientRest.length) {
    observer.fromClient(opts.clientRest);
    if (!clientGone) server.write(opts.clientRest); // a consumer that stopped on them ended the session
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
