// Transaction mode: a client holds a server connection only while it is in a transaction (or
// has answers outstanding). Both streams are framed message by message, because the relay must
// know when the server is idle (ReadyForQuery 'I' with nothing in flight) and must rewrite the
// client's named prepared statements to the gateway's own names so that any server connection
// can serve them (client-stream.ts, prepared.ts). Messages that are not rewritten are passed on
// as views of the chunks they came in (never copied); what the server still owes the client is
// kept in order by the response queue (response-queue.ts), which also places the answers the
// gateway makes itself. This file is the session: borrowing and giving back, and the server's
// stream; what the client gets (with the strict-audit hold) is client-output.ts's.
// The observer sees the client-facing stream both ways, so audit and the SQL watch work per
// client, whichever server connection ran the statement. Each stream is framed once, here: the
// observer is handed the messages already framed (the client's as they arrive, client-framing.ts,
// before a connection may be lent; the server's as they are passed on).
import type { Duplex } from 'node:stream';
import { BackendCode, errorResponse, framingCounters, FrontendCode, type SessionObserver } from '../../pgwire/index.js';
import { serverGoneMessage } from '../relay.js';
import { PoolWaitError, type Lender, type ServerConnection } from './types.js';
import { entry, Mode, Reply, ResponseQueue, type Entry, type QueueSink } from './response-queue.js';
import { ClientStream } from './client-stream.js';
import { ClientOutput } from './client-output.js';
import { APPLICATION_NAME, setApplicationName, writeCorked } from './client-messages.js';
import type { TransactionLimits, TransactionSession, TransactionSessionOptions } from './transaction-types.js';

export type { TransactionLimits, TransactionSession, TransactionSessionOptions } from './transaction-types.js';

export { LISTEN_MESSAGE } from './client-stream.js';

export const DEFAULT_LIMITS: TransactionLimits = { perServer: 1000, perClient: 10_000 };

export function startTransactionSession(o: TransactionSessionOptions): TransactionSession {
  return startTransactionSessionWith(o, DEFAULT_LIMITS);
}

/** startTransactionSession with other limits (tests). */
export function startTransactionSessionWith(o: TransactionSessionOptions, limits: TransactionLimits): TransactionSession {
  const r = new TransactionRelay(o, limits);
  r.start();
  return r;
}

const X = FrontendCode.Terminate;
const READY = BackendCode.ReadyForQuery;
const PARAMETER_STATUS = BackendCode.ParameterStatus;
const IDLE = 0x49; // 'I'

class TransactionRelay implements TransactionSession, QueueSink {
  private readonly client: Duplex;
  private readonly observer: SessionObserver;
  private readonly lender: Lender;
  private readonly queue: ResponseQueue;
  private conn: ServerConnection | null = null;
  private acquiring = false;
  private ended = false;
  private clientGone = false;
  private clientEnded = false;
  private bytesFromClient = 0;
  /** Transaction status of the last ReadyForQuery of the lent connection. */
  private status = IDLE;
  private readonly cs: ClientStream;
  /** What the client gets, in order. */
  private readonly out: ClientOutput;

  // Server framing.
  private readonly sHeader = Buffer.alloc(5);
  private sFill = 0;
  private sType = 0;
  private sSkip = 0;
  private sForward = false;
  /** Body of a ParameterStatus being read (the server's parameters are kept on the connection). */
  private sBody: Buffer | null = null;
  private sBodyFill = 0;
  /** Status byte of the ReadyForQuery being read (0: not read yet). */
  private sStatus = 0;
  /** The forwarded run of the current server chunk, and where the last message ended in it. */
  private sChunk: Buffer | null = null;
  private sRun = -1;
  private sEnd = 0;

  private readonly onServerData = (c: Buffer) => this.serverData(c);
  private readonly onServerGone = () => this.serverGone();
  private readonly onServerError = () => this.conn?.socket.destroy();
  private readonly onServerDrain = () => this.client.resume();

  constructor(
    private readonly o: TransactionSessionOptions,
    limits: TransactionLimits,
  ) {
    this.client = o.client;
    this.observer = o.observer;
    this.lender = o.lender;
    this.queue = new ResponseQueue(this);
    this.cs = new ClientStream(this.queue, limits, o.observer);
    this.out = new ClientOutput(this.client, () => o.hold?.() ?? null, {
      pause: () => this.conn?.socket.pause(),
      resume: () => this.conn?.socket.resume(),
    });
  }

  start(): void {
    const client = this.client;
    this.o.onHandle?.(this);
    client.on('data', (c: Buffer) => this.clientData(c));
    client.on('error', () => client.destroy());
    client.on('end', () => {
      this.clientEnded = true;
      this.out.end(null);
    });
    client.on('close', () => this.clientClosed());
    client.on('drain', () => {
      if (!this.out.holding) this.conn?.socket.resume();
    });
    if (this.o.clientRest.length) this.clientData(this.o.clientRest);
    // The login left the client's socket paused (a 'data' listener does not resume a stream
    // paused on purpose); a client waiting for a server connection stays paused.
    if (!this.acquiring && !this.clientGone) client.resume();
  }

  current(): ServerConnection | null {
    return this.conn;
  }

  terminate(error: { sqlstate: string; message: string }): void {
    if (this.clientGone) return;
    this.clientGone = true;
    this.giveBack('broken');
    if (this.observer.serverAtBoundary) this.client.end(errorResponse({ severity: 'FATAL', sqlstate: error.sqlstate, message: error.message }));
    else this.client.destroy();
  }

  // ---- client side

  private clientData(chunk: Buffer): void {
    if (this.clientGone || this.cs.terminated) return;
    this.bytesFromClient += chunk.length;
    const idle = this.cs.atBoundary && !this.cs.waiting;
    // Framed now, with or without a connection: the observer sees each message as it arrives.
    this.cs.push(chunk);
    if (this.conn === null) {
      // A Terminate needs no server connection.
      if (idle && chunk[0] === X) {
        this.cs.terminateIdle();
        this.out.end(null);
        return;
      }
      // The messages wait, framed, for lent() to hand them over.
      this.acquire();
      return;
    }
    this.cs.handle();
    this.afterClient();
  }

  private acquire(): void {
    if (this.acquiring) return;
    const warm = this.lender.tryAcquire?.() ?? null;
    if (warm !== null) {
      this.lent(warm);
      return;
    }
    this.acquiring = true;
    this.client.pause();
    this.lender.acquire().then(
      (conn) => this.lent(conn),
      (err: unknown) => {
        this.acquiring = false;
        if (this.clientGone) return;
        const e = err instanceof PoolWaitError ? err : new PoolWaitError('08006', 'could not get a server connection');
        this.clientGone = true;
        this.client.end(errorResponse({ severity: 'FATAL', sqlstate: e.sqlstate, message: e.message }));
      },
    );
  }

  private lent(conn: ServerConnection): void {
    this.acquiring = false;
    if (this.clientGone) {
      this.lender.release(conn, 'idle');
      return;
    }
    this.conn = conn;
    this.cs.conn = conn;
    this.status = IDLE;
    this.cs.unsynced = false;
    const s = conn.socket;
    s.on('data', this.onServerData);
    s.on('close', this.onServerGone);
    s.on('end', this.onServerGone);
    s.on('error', this.onServerError);
    s.on('drain', this.onServerDrain);
    this.o.onLend?.(conn);
    if (conn.rest.length) {
      // Normally empty: what the server said after its last ReadyForQuery.
      const rest = conn.rest;
      conn.rest = Buffer.alloc(0);
      this.serverData(rest);
      if (this.conn !== conn) {
        if (!this.clientGone) this.acquire();
        return;
      }
    }
    const app = this.o.applicationName;
    if (app !== undefined && conn.parameters.get(APPLICATION_NAME) !== app) {
      // Pipelined with the client's messages: no round trip of its own. Its ReadyForQuery is
      // swallowed; its ParameterStatus (the client's own name) passes, as PostgreSQL sends it.
      this.cs.toServer.push(setApplicationName(app));
      this.queue.push(entry(Reply.Query, Mode.Swallow));
    }
    this.cs.handle();
    this.afterClient();
    if (this.conn === conn) s.resume();
    if (!this.cs.terminated && !this.clientGone) this.client.resume();
  }

  /** QueueSink: a synthetic answer's turn. */
  /** QueueSink: the message of `e` did not take effect on the server. */
  undone(e: Entry): void {
    this.cs.undone(e);
  }

  private flushServer(): void {
    const list = this.cs.toServer;
    if (list.length === 0) return;
    this.cs.toServer = [];
    if (this.conn === null) return;
    if (!writeCorked(this.conn.socket, list)) this.client.pause();
  }

  emit(bytes: Buffer): void {
    // After the server message that completed the entry before it.
    if (this.sChunk !== null) this.endServerRun(this.sEnd);
    // Made here, never framed by the relay: the observer frames it.
    this.observer.fromServer(bytes);
    this.out.push(bytes);
  }

  /** After a client chunk: sends what it made, ends a terminated session, and gives back a
   * connection that was lent for nothing to answer (a lone Flush). */
  private afterClient(): void {
    if (this.cs.failed) {
      this.protocolFailure();
      return;
    }
    this.flushServer();
    if (this.cs.terminated) {
      this.giveBack(this.reusable() ? 'idle' : 'broken');
      this.out.end(null);
      return;
    }
    // A message still arriving keeps the connection: giving it back now would only borrow again.
    if (this.conn !== null && this.reusable() && this.cs.atBoundary) this.giveBack('idle');
    this.out.flush();
  }

  private reusable(): boolean {
    return this.status === IDLE && this.queue.empty && !this.cs.unsynced && !this.cs.streaming;
  }

  // ---- server side

  private serverData(chunk: Buffer): void {
    const conn = this.conn;
    if (conn === null) return;
    const n = chunk.length;
    let i = 0;
    this.sChunk = chunk;
    this.sRun = -1;
    while (i < n) {
      if (this.sSkip > 0) {
        const take = Math.min(this.sSkip, n - i);
        if (this.sForward) {
          if (this.sRun < 0) this.sRun = i;
          this.observer.serverBody(chunk, i, i + take);
        }
        if (this.sType === READY) {
          // Its one body byte is the transaction status: read in place, nothing allocated.
          if (this.sBodyFill++ === 0) this.sStatus = chunk[i]!;
        } else if (this.sBody !== null) {
          chunk.copy(this.sBody, this.sBodyFill, i, i + take);
          this.sBodyFill += take;
        }
        i += take;
        this.sSkip -= take;
        if (this.sSkip === 0 && this.messageEnd(i)) break;
        continue;
      }
      const start = i;
      let type: number;
      let length: number;
      let inChunk = true;
      if (this.sFill === 0 && n - i >= 5) {
        type = chunk[i]!;
        length = chunk.readInt32BE(i + 1);
        i += 5;
      } else {
        this.endServerRun(start);
        while (this.sFill < 5 && i < n) this.sHeader[this.sFill++] = chunk[i++]!;
        if (this.sFill < 5) break;
        this.sFill = 0;
        type = this.sHeader[0]!;
        length = this.sHeader.readInt32BE(1);
        inChunk = false;
      }
      framingCounters.messages++;
      if (length < 4) {
        // Garbage from the server: nothing more of it can be trusted.
        this.endServerRun(start);
        this.sChunk = null;
        this.out.flush();
        conn.socket.destroy();
        return;
      }
      this.sType = type;
      this.sSkip = length - 4;
      const forward = this.queue.route(type);
      this.sForward = forward;
      // The observer follows what the client gets, framed here once.
      if (forward) this.observer.serverHeader(type, length);
      if (!forward) this.endServerRun(start);
      else if (!inChunk) {
        this.out.push(Buffer.from(this.sHeader));
        this.sRun = i;
      } else if (this.sRun < 0) this.sRun = start;
      this.sBody = type === PARAMETER_STATUS ? Buffer.allocUnsafe(this.sSkip) : null;
      this.sStatus = 0;
      this.sBodyFill = 0;
      if (this.sSkip === 0 && this.messageEnd(i)) break;
    }
    this.endServerRun(i);
    this.sChunk = null;
    // Given back at ReadyForQuery 'I': what follows belongs to the pool.
    if (i < n && this.conn !== conn) conn.rest = Buffer.from(chunk.subarray(i));
    this.out.flush();
  }

  /** Passes the server run [sRun, end) of the current chunk to the client, if any. */
  private endServerRun(end: number): void {
    if (this.sRun >= 0 && this.sChunk !== null && end > this.sRun) this.out.push(this.sChunk.subarray(this.sRun, end));
    this.sRun = -1;
  }

  /** A server message ended at `at` in the chunk. Returns true when the connection was given back. */
  private messageEnd(at: number): boolean {
    const type = this.sType;
    const body = this.sBody;
    this.sBody = null;
    this.sEnd = at;
    if (type === PARAMETER_STATUS && body !== null) {
      const k = body.indexOf(0);
      const v = k < 0 ? -1 : body.indexOf(0, k + 1);
      if (v > k) this.conn?.parameters.set(body.toString('utf8', 0, k), body.toString('utf8', k + 1, v));
    }
    this.queue.complete(type);
    if (type === READY && this.sStatus !== 0) {
      this.status = this.sStatus;
      // A client message still arriving keeps the connection: it is for this one.
      if (this.reusable() && this.cs.atBoundary) {
        this.endServerRun(at);
        this.giveBack('idle');
        return true;
      }
    }
    return false;
  }

  private serverGone(): void {
    const conn = this.conn;
    if (conn === null) return;
    this.detach(conn);
    this.conn = null;
    this.cs.conn = null;
    this.queue.reset();
    this.lender.release(conn, 'broken');
    this.o.onReturn?.(conn);
    if (this.clientGone) return;
    this.clientGone = true;
    this.out.end(serverGoneMessage(this.observer, !this.clientEnded && !this.cs.terminated));
  }

  private detach(conn: ServerConnection): void {
    const s = conn.socket;
    s.removeListener('data', this.onServerData);
    s.removeListener('close', this.onServerGone);
    s.removeListener('end', this.onServerGone);
    s.removeListener('error', this.onServerError);
    s.removeListener('drain', this.onServerDrain);
    s.pause();
  }

  /** Gives the lent connection back (if any). */
  private giveBack(state: 'idle' | 'broken'): void {
    const conn = this.conn;
    if (conn === null) return;
    this.detach(conn);
    this.conn = null;
    this.cs.conn = null;
    this.queue.reset();
    this.sFill = 0;
    this.sSkip = 0;
    this.sBody = null;
    this.lender.release(conn, state);
    this.o.onReturn?.(conn);
    // The client may have been paused for this connection's full socket, whose drain is not ours now.
    if (!this.clientGone && !this.cs.terminated) this.client.resume();
  }

  private protocolFailure(): void {
    this.clientGone = true;
    this.giveBack('broken');
    this.client.destroy();
  }

  private clientClosed(): void {
    this.clientGone = true;
    this.giveBack(this.reusable() ? 'idle' : 'broken');
    this.cs.forgetAll();
    if (this.ended) return;
    this.ended = true;
    this.observer.end();
    this.o.onEnd({ bytesFromClient: this.bytesFromClient, bytesToClient: this.out.bytes });
  }
}
