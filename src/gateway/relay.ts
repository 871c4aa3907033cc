// Step 9: after authentication, bytes flow both ways untouched. Node's pipe gives backpressure
// (a side that cannot take more pauses the other). A close on either side closes the other; a
// server that goes away without saying why while the client still expects it (no Terminate, no
// half-close from the client) gives the client an error, when the stream is at a message
// boundary. Each direction is framed once, by the session's observer, which also hands the
// statement audit and the SQL watch their events; the relay reads the boundaries from it.
// A pooled server connection (session mode) is not closed with the client: the client's Terminate
// is not passed on, and the connection goes back to the pool, reusable only when the server was
// ReadyForQuery 'I' with nothing the client sent after it.
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { BackendCode, errorResponse, type SessionObserver } from '../pgwire/index.js';
import type { ReturnState } from './pool/types.js';

export interface RelayStats {
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
}

/** A server that went away mid-session, as the client is told (also in transaction mode and by
 * the native relay). */
export const SERVER_GONE = errorResponse({
  severity: 'FATAL',
  sqlstate: '08006',
  message: 'server closed the connection unexpectedly',
  detail: 'The server process ended while the session was open.',
});

/** The client's last message when its server went away: SERVER_GONE when the client still
 * expects answers and the server stopped between messages without an error of its own (a FATAL
 * it sent says why already); otherwise none. */
export function serverGoneMessage(observer: SessionObserver, clientExpectedMore: boolean): Buffer | null {
  return clientExpectedMore && observer.serverAtBoundary && observer.serverLastType !== BackendCode.ErrorResponse ? SERVER_GONE : null;
}

export interface PooledServer {
  /** The connection goes back to its pool (the relay no longer touches it). */
  release(state: ReturnState): void;
}

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
  /** The server connection is a pool's: given back instead of closed. */
  pooled?: PooledServer;
  onEnd: (stats: RelayStats) => void;
}): RelayHandle {
  if (opts.pooled) return pooledRelay({ ...opts, pooled: opts.pooled });
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
  /** Strict durability: the server chunk still waiting for the audit log, if any. */
  let held: Promise<void> | null = null;
  server.on('close', () => {
    const endClient = () => {
      if (clientGone) return;
      const last = serverGoneMessage(observer, !clientEnded && !observer.clientTerminated);
      if (last) client.end(last);
      else client.end();
    };
    // The server's last words (a FATAL before it went away) reach the client before its end.
    if (held) void held.then(endClient);
    else endClient();
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
      held = forwardHeld(c, server, client, hold, () => clientGone);
    });
    client.on('drain', () => server.resume());
    server.resume(); // the handshake left it paused
  }
  return handle;
}

/** A server chunk to the client once the audit records it completed are on disk (strict
 * durability), with backpressure as pipe() gives it. Returns the forward still waiting, if any
 * (the server is paused meanwhile, so there is at most one). */
function forwardHeld(c: Buffer, server: net.Socket, client: Duplex, hold: () => Promise<void> | null, gone: () => boolean): Promise<void> | null {
  const wait = hold();
  const forward = () => {
    if (gone()) return;
    if (!client.write(c)) server.pause();
    else if (wait) server.resume();
  };
  if (!wait) {
    forward();
    return null;
  }
  server.pause();
  return wait.then(forward, forward);
}

const TERMINATE_LENGTH = 5;
const READY_IDLE = 0x49; // 'I'

function endsWithTerminate(c: Buffer): boolean {
  const n = c.length;
  return n >= TERMINATE_LENGTH && c[n - 5] === 0x58 /* 'X' */ && c.readInt32BE(n - 4) === 4;
}

/** The relay of a pooled connection: the client's bytes are passed on by hand, so its Terminate
 * stays at the gateway, and every listener the relay put on the server socket comes off when the
 * connection goes back. */
function pooledRelay(opts: Parameters<typeof relay>[0] & { pooled: PooledServer }): RelayHandle {
  const { client, server, observer, pooled } = opts;
  // Idle means: the server's last ReadyForQuery said 'I' and the client sent nothing after it
  // (counted in chunks passed on; the observer counts the ReadyForQuery messages).
  let clientChunks = 0;
  let chunksAtReady = 0;
  let readySeen = observer.serverReadyCount;
  let bytesFromClient = 0; // the bytes that came with the login are counted as they are fed
  let bytesToClient = 0;
  let ended = false;
  let clientGone = false;
  let returned = false;
  /** Something the client sent cannot be undone on the server (bytes after its Terminate). */
  let dirty = false;
  const hold = opts.hold;
  /** Strict durability: the server chunk still waiting for the audit log, if any. */
  let held: Promise<void> | null = null;

  const finish = () => {
    if (ended) return;
    ended = true;
    observer.end();
    opts.onEnd({ bytesFromClient, bytesToClient });
  };

  const onServerData = (c: Buffer) => {
    bytesToClient += c.length;
    observer.fromServer(c);
    if (observer.serverReadyCount !== readySeen) {
      readySeen = observer.serverReadyCount;
      chunksAtReady = clientChunks;
    }
    if (clientGone) return;
    if (hold) held = forwardHeld(c, server, client, hold, () => clientGone);
    else if (!client.write(c)) server.pause();
  };
  const onServerError = () => server.destroy();
  const onServerClose = () => {
    const endClient = () => {
      if (clientGone) return;
      clientGone = true;
      const last = serverGoneMessage(observer, !observer.clientTerminated);
      if (last) client.end(last);
      else client.end();
    };
    // The server's last words (a FATAL before it went away) reach the client before its end.
    if (held) void held.then(endClient);
    else endClient();
    giveBack();
    finish();
  };
  const onClientDrain = () => server.resume();
  const onServerDrain = () => client.resume();

  /** Once: the server connection back to the pool, reusable only at an idle boundary. */
  const giveBack = () => {
    if (returned) return;
    returned = true;
    server.off('data', onServerData);
    server.off('error', onServerError);
    server.off('close', onServerClose);
    server.off('drain', onServerDrain);
    client.off('drain', onClientDrain);
    server.pause();
    // Idle since the last ReadyForQuery (or since the lend, for a client that sent nothing).
    const idle = observer.serverReadyStatus === READY_IDLE && chunksAtReady === clientChunks;
    const reusable = !dirty && !server.destroyed && idle && observer.serverAtBoundary;
    if (!reusable) server.destroy();
    pooled.release(reusable ? 'idle' : 'broken');
  };

  const fromClient = (c: Buffer) => {
    if (returned) return;
    bytesFromClient += c.length;
    const wasTerminated = observer.clientTerminated;
    observer.fromClient(c);
    let out = c;
    if (!wasTerminated && observer.clientTerminated) {
      // The client is done: the server connection stays open for the next one.
      if (endsWithTerminate(c)) out = c.subarray(0, c.length - TERMINATE_LENGTH);
      else dirty = true;
    }
    if (out.length > 0) {
      clientChunks++;
      if (!server.write(out)) client.pause();
    }
    if (observer.clientTerminated) {
      clientGone = true;
      giveBack();
      client.end();
    }
  };

  server.on('data', onServerData);
  server.on('error', onServerError);
  server.on('close', onServerClose);
  server.on('drain', onServerDrain);
  client.on('drain', onClientDrain);
  client.on('error', () => client.destroy());
  client.on('close', () => {
    clientGone = true;
    giveBack();
    finish();
  });
  client.on('end', () => {
    clientGone = true;
    giveBack();
    client.end();
  });

  const handle: RelayHandle = {
    terminate(error) {
      if (clientGone) return;
      clientGone = true;
      dirty = true;
      const atBoundary = observer.serverAtBoundary;
      giveBack();
      if (atBoundary) client.end(errorResponse({ severity: 'FATAL', sqlstate: error.sqlstate, message: error.message }));
      else client.destroy();
    },
  };
  opts.onHandle?.(handle);

  if (opts.serverRest.length) onServerData(opts.serverRest);
  if (opts.clientRest.length) fromClient(opts.clientRest);
  client.on('data', fromClient);
  if (server.destroyed) onServerClose();
  else if (client.destroyed) {
    // The client left while it waited for its connection.
    clientGone = true;
    giveBack();
    finish();
  } else {
    server.resume();
    client.resume(); // the handshake left it paused (pipe() resumes it in the plain relay)
  }
  return handle;
}
