// Transaction mode: a client holds a server connection only while it is in a transaction (or
// has answers outstanding). Both streams are framed here, message by message, because the relay
// must know when the server is idle (ReadyForQuery 'I' with nothing in flight) and must rewrite
// the client's named prepared statements to the gateway's own names (prepared.ts) so that any
// server connection can serve them. Messages that are not rewritten are passed on as views of
// the chunks they came in (never copied); what the server still owes the client is kept in
// order by the response queue (response-queue.ts), which also places the answers the gateway
// makes itself.
// The observer sees the client-facing stream both ways, so audit and the SQL watch work per
// client, whichever server connection ran the statement.
import type { Duplex } from 'node:stream';
import { BackendCode, errorResponse, FrontendCode, type SessionObserver } from '../../pgwire/index.js';
import type { RelayHandle, RelayStats } from '../relay.js';
import { PoolWaitError, type Lender, type ServerConnection } from './types.js';
import { entry, Mode, Reply, ResponseQueue, Tag, type Entry, type QueueSink } from './response-queue.js';
import {
  CLOSE_COMPLETE,
  closeStatement,
  firstKeywordIs,
  namedMessage,
  nulAt,
  PARSE_COMPLETE,
  release as releaseStatement,
  retain,
  statementOf,
  type Statement,
} from './prepared.js';

export interface TransactionSessionOptions {
  client: Duplex;
  /** Client bytes read past login. */
  clientRest: Buffer;
  lender: Lender;
  /** Sees the client-facing stream. */
  observer: SessionObserver;
  /** Strict audit durability, as in relay.ts: before server bytes go to the client, wait for this promise when non-null. */
  hold?: () => Promise<void> | null;
  onHandle?: (handle: RelayHandle) => void;
  /** A connection was lent to this client. */
  onLend?: (conn: ServerConnection) => void;
  /** It was given back. */
  onReturn?: (conn: ServerConnection) => void;
  onEnd: (stats: RelayStats) => void;
}

export interface TransactionSession extends RelayHandle {
  current(): ServerConnection | null;
}

export interface TransactionLimits {
  /** Statements the gateway keeps prepared on one server connection (least recently used evicted). */
  readonly perServer: number;
  /** Named statements one client may hold. */
  readonly perClient: number;
}

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

const SERVER_GONE = errorResponse({
  severity: 'FATAL',
  sqlstate: '08006',
  message: 'server closed the connection unexpectedly',
  detail: 'The server process ended while the session was open.',
});

export const LISTEN_MESSAGE = 'LISTEN is not supported on a server in transaction pooling mode';
const LISTEN_ERROR = errorResponse({ severity: 'ERROR', sqlstate: '0A000', message: LISTEN_MESSAGE });
// A simple Query is answered by the server itself, so the error aborts a transaction block as
// PostgreSQL's would and ReadyForQuery carries the true status.
const LISTEN_QUERY = (() => {
  const sql = `DO $pgw$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = '${LISTEN_MESSAGE}'; END$pgw$`;
  const body = Buffer.from(`${sql}\0`);
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = FrontendCode.Query;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
})();

const P = FrontendCode.Parse;
const B = FrontendCode.Bind;
const D = FrontendCode.Describe;
const C = FrontendCode.Close;
const E = FrontendCode.Execute;
const S = FrontendCode.Sync;
const H = FrontendCode.Flush;
const Q = FrontendCode.Query;
const F = FrontendCode.FunctionCall;
const X = FrontendCode.Terminate;
const COPY_DATA = FrontendCode.CopyData;
const COPY_DONE = FrontendCode.CopyDone;
const COPY_FAIL = FrontendCode.CopyFail;
const STATEMENT = 0x53; // 'S' in Describe and Close
const READY = BackendCode.ReadyForQuery;
const PARAMETER_STATUS = BackendCode.ParameterStatus;
const IDLE = 0x49; // 'I'

/** Client messages read whole before they are passed on (the others stream through). */
function readWhole(type: number): boolean {
  return type === P || type === B || type === D || type === C || type === Q;
}

class TransactionRelay implements TransactionSession, QueueSink {
  private readonly client: Duplex;
  private readonly observer: SessionObserver;
  private readonly lender: Lender;
  private readonly queue: ResponseQueue;
  private conn: ServerConnection | null = null;
  private acquiring = false;
  /** Client chunks waiting for a server connection. */
  private pending: Buffer[] = [];
  private ended = false;
  private clientGone = false;
  private clientEnded = false;
  private terminated = false;
  private bytesFromClient = 0;
  private bytesToClient = 0;
  /** The client's named statements. */
  private readonly statements = new Map<string, Statement>();
  /** Transaction status of the last ReadyForQuery of the lent connection. */
  private status = IDLE;
  /** Something was sent since the last Sync or Query (the server is inside an extended-query sequence). */
  private unsynced = false;
  /** The gateway answered an error itself: the client's messages up to its Sync are dropped. */
  private discard = false;

  // Client framing.
  private readonly cHeader = Buffer.alloc(5);
  private cFill = 0;
  private cType = 0;
  private cSkip = 0;
  private cForward = false;
  private cCollect: Buffer | null = null;
  private cCollected = 0;
  /** The forwarded run of the current client chunk. */
  private runChunk: Buffer | null = null;
  private runStart = -1;
  private toServer: Buffer[] = [];

  // Server framing.
  private readonly sHeader = Buffer.alloc(5);
  private sFill = 0;
  private sType = 0;
  private sSkip = 0;
  private sForward = false;
  /** Body of a ParameterStatus or ReadyForQuery being read. */
  private sBody: Buffer | null = null;
  private sBodyFill = 0;
  private toClient: Buffer[] = [];
  /** The forwarded run of the current server chunk, and where the last message ended in it. */
  private sChunk: Buffer | null = null;
  private sRun = -1;
  private sEnd = 0;
  private holding = false;
  private endAfterHold: Buffer | null | undefined = undefined;

  private readonly onServerData = (c: Buffer) => this.serverData(c);
  private readonly onServerGone = () => this.serverGone();
  private readonly onServerError = () => this.conn?.socket.destroy();
  private readonly onServerDrain = () => this.client.resume();

  constructor(
    private readonly o: TransactionSessionOptions,
    private readonly limits: TransactionLimits,
  ) {
    this.client = o.client;
    this.observer = o.observer;
    this.lender = o.lender;
    this.queue = new ResponseQueue(this);
  }

  start(): void {
    const client = this.client;
    this.o.onHandle?.(this);
    client.on('data', (c: Buffer) => this.clientData(c));
    client.on('error', () => client.destroy());
    client.on('end', () => {
      this.clientEnded = true;
      this.endClient(null);
    });
    client.on('close', () => this.clientClosed());
    client.on('drain', () => {
      if (!this.holding) this.conn?.socket.resume();
    });
    if (this.o.clientRest.length) this.clientData(this.o.clientRest);
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
    if (this.clientGone || this.terminated) return;
    this.bytesFromClient += chunk.length;
    this.observer.fromClient(chunk);
    if (this.conn === null) {
      // A Terminate needs no server connection.
      if (this.cFill === 0 && this.cSkip === 0 && this.cCollect === null && chunk[0] === X && this.pending.length === 0) {
        this.terminated = true;
        this.endClient(null);
        return;
      }
      this.pending.push(chunk);
      this.acquire();
      return;
    }
    this.processClient(chunk);
    this.afterClient();
  }

  private acquire(): void {
    if (this.acquiring) return;
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
    this.status = IDLE;
    this.unsynced = false;
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
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length && !this.terminated; i++) this.processClient(pending[i]!);
    this.afterClient();
    if (this.conn === conn) s.resume();
    if (!this.terminated && !this.clientGone) this.client.resume();
  }

  private processClient(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    this.runChunk = chunk;
    this.runStart = -1;
    while (i < n && !this.terminated) {
      if (this.cSkip > 0) {
        const take = Math.min(this.cSkip, n - i);
        if (this.cForward && this.runStart < 0) this.runStart = i;
        i += take;
        this.cSkip -= take;
        continue;
      }
      if (this.cCollect !== null) {
        const buf = this.cCollect;
        const take = Math.min(buf.length - this.cCollected, n - i);
        chunk.copy(buf, this.cCollected, i, i + take);
        this.cCollected += take;
        i += take;
        if (this.cCollected === buf.length) {
          this.cCollect = null;
          this.currentStart = -1;
          if (this.whole(this.cType, buf, 0, buf.length)) {
            this.toServer.push(header(this.cType, buf.length));
            this.toServer.push(buf);
          }
        }
        continue;
      }
      let type: number;
      let length: number;
      const start = i;
      let inChunk: boolean;
      if (this.cFill === 0 && n - i >= 5) {
        type = chunk[i]!;
        length = chunk.readInt32BE(i + 1);
        i += 5;
        inChunk = true;
      } else {
        // A header cut between chunks: its bytes are never part of a run.
        this.endRun(start);
        while (this.cFill < 5 && i < n) this.cHeader[this.cFill++] = chunk[i++]!;
        if (this.cFill < 5) break;
        this.cFill = 0;
        type = this.cHeader[0]!;
        length = this.cHeader.readInt32BE(1);
        inChunk = false;
      }
      if (length < 4) {
        this.protocolFailure();
        return;
      }
      const bodyLength = length - 4;
      this.cType = type;
      if (readWhole(type)) {
        if (inChunk && n - i >= bodyLength) {
          this.currentStart = start;
          // Passed on as it came: the run goes on over it (no copy).
          if (this.whole(type, chunk, i, i + bodyLength)) {
            if (this.runStart < 0) this.runStart = start;
          } else this.endRun(start);
          i += bodyLength;
        } else {
          this.endRun(start);
          this.cCollect = Buffer.allocUnsafe(bodyLength);
          this.cCollected = 0;
        }
        continue;
      }
      const forward = this.streamed(type);
      this.cForward = forward;
      this.cSkip = bodyLength;
      if (!forward) this.endRun(start);
      else if (!inChunk) {
        this.toServer.push(Buffer.from(this.cHeader));
        this.runStart = i;
      } else if (this.runStart < 0) this.runStart = start;
    }
    this.endRun(i);
    this.runChunk = null;
  }

  /** Passes on the run [runStart, end) of the current chunk, if any. */
  private endRun(end: number): void {
    if (this.runStart >= 0 && this.runChunk !== null) {
      if (end > this.runStart) this.toServer.push(this.runChunk.subarray(this.runStart, end));
    }
    this.runStart = -1;
  }

  private flushServer(): void {
    const list = this.toServer;
    if (list.length === 0) return;
    this.toServer = [];
    if (this.conn === null) return;
    const s = this.conn.socket;
    s.cork();
    let ok = true;
    for (let i = 0; i < list.length; i++) ok = s.write(list[i]!);
    s.uncork();
    if (!ok) this.client.pause();
  }

  /**
   * A streamed (not read whole) client message at its header: whether it is passed on. Pushes
   * what it expects back.
   */
  private streamed(type: number): boolean {
    if (type === X) {
      // Not passed on: the server connection outlives this client.
      this.terminated = true;
      return false;
    }
    if (this.discard) {
      if (type !== S) return false;
      this.discard = false;
    }
    switch (type) {
      case S:
        this.unsynced = false;
        this.queue.push(entry(Reply.Sync, Mode.Forward));
        break;
      case E:
        this.unsynced = true;
        this.queue.push(entry(Reply.Execute, Mode.Forward));
        break;
      case F:
        this.unsynced = false;
        this.queue.push(entry(Reply.Query, Mode.Forward));
        break;
      case COPY_DONE:
      case COPY_FAIL:
        this.queue.push(entry(Reply.CopyEnd, Mode.Forward));
        break;
      case H:
      case COPY_DATA:
        break;
      default:
        this.unsynced = true;
    }
    return true;
  }

  /**
   * A client message read whole: body buf[start, end). Returns true when it is passed on as it
   * came; otherwise it was answered or rewritten here (what replaces it went to toServer).
   */
  private whole(type: number, buf: Buffer, start: number, end: number): boolean {
    if (this.discard) return false;
    switch (type) {
      case Q:
        this.unsynced = false;
        if (firstKeywordIs(buf, start, end, 'LISTEN')) {
          this.rewritten(LISTEN_QUERY);
          this.queue.push(entry(Reply.Query, Mode.Forward));
          return false;
        }
        this.queue.push(entry(Reply.Query, Mode.Forward));
        return true;
      case P:
        return this.parse(buf, start, end);
      case B:
        return this.bind(buf, start, end);
      case D:
        return this.describeOrClose(type, buf, start, end);
      case C:
        return this.describeOrClose(type, buf, start, end);
    }
    return true;
  }

  private rewritten(b: Buffer): void {
    this.endRunBeforeCurrent();
    this.toServer.push(b);
  }

  /** Position of the current whole message's header in the run chunk (set by processClient). */
  private currentStart = -1;

  private endRunBeforeCurrent(): void {
    if (this.runStart >= 0) {
      this.endRun(this.currentStart);
    }
  }

  /** The gateway answers an error for the current message and drops the client's messages up to its Sync. */
  private answerError(err: Buffer): void {
    this.endRunBeforeCurrent();
    this.unsynced = true;
    this.queue.push(entry(Reply.One, Mode.Synthetic, err));
    this.discard = true;
  }

  private parse(buf: Buffer, start: number, end: number): boolean {
    const nameEnd = nulAt(buf, start, end);
    if (nameEnd < 0) return true; // malformed: the server says so
    this.unsynced = true;
    const textEnd = nulAt(buf, nameEnd + 1, end);
    if (textEnd > 0 && firstKeywordIs(buf, nameEnd + 1, textEnd, 'LISTEN')) {
      this.answerError(LISTEN_ERROR);
      return false;
    }
    if (nameEnd === start) {
      this.queue.push(entry(Reply.One, Mode.Forward));
      return true;
    }
    const name = buf.toString('utf8', start, nameEnd);
    if (this.statements.has(name)) {
      this.answerError(errorResponse({ severity: 'ERROR', sqlstate: '42P05', message: `prepared statement "${name}" already exists` }));
      return false;
    }
    if (this.statements.size >= this.limits.perClient) {
      this.answerError(
        errorResponse({
          severity: 'ERROR',
          sqlstate: '54000',
          message: `too many prepared statements (at most ${this.limits.perClient} per client in transaction pooling mode)`,
        }),
      );
      return false;
    }
    const stmt = statementOf(buf, start, nameEnd, end);
    this.statements.set(name, stmt);
    const conn = this.conn!;
    this.endRunBeforeCurrent();
    if (conn.prepared.has(stmt.server)) {
      touch(conn.prepared, stmt.server);
      this.queue.push(entry(Reply.One, Mode.Synthetic, PARSE_COMPLETE, Tag.ClientParse, name, '', stmt));
    } else {
      this.prepared(conn, stmt.server);
      this.toServer.push(stmt.parse);
      this.queue.push(entry(Reply.One, Mode.Forward, null, Tag.ClientParse, name, stmt.server, stmt));
    }
    return false;
  }

  /** The lent connection has the statement (a Parse is inserted when it does not). */
  private ensure(stmt: Statement): void {
    const conn = this.conn!;
    if (conn.prepared.has(stmt.server)) {
      touch(conn.prepared, stmt.server);
      return;
    }
    this.prepared(conn, stmt.server);
    this.toServer.push(stmt.parse);
    this.queue.push(entry(Reply.One, Mode.Swallow, null, Tag.InsertedParse, '', stmt.server));
  }

  /** Records a statement about to be sent to the connection, evicting the least recently used
   * over the cap (its Close goes first, so the queue's entries keep the wire's order). */
  private prepared(conn: ServerConnection, server: string): void {
    conn.prepared.add(server);
    if (conn.prepared.size <= this.limits.perServer) return;
    for (const old of conn.prepared) {
      if (old === server) continue;
      conn.prepared.delete(old);
      this.toServer.push(closeStatement(old));
      this.queue.push(entry(Reply.One, Mode.Swallow, null, Tag.Evict, '', old));
      return;
    }
  }

  private bind(buf: Buffer, start: number, end: number): boolean {
    this.unsynced = true;
    const portalEnd = nulAt(buf, start, end);
    const nameEnd = portalEnd < 0 ? -1 : nulAt(buf, portalEnd + 1, end);
    const stmt = nameEnd > portalEnd + 1 ? this.statements.get(buf.toString('utf8', portalEnd + 1, nameEnd)) : undefined;
    if (stmt === undefined) {
      // Unnamed, unknown (the server answers that it does not exist) or malformed.
      this.queue.push(entry(Reply.One, Mode.Forward));
      return true;
    }
    this.endRunBeforeCurrent();
    this.ensure(stmt);
    this.toServer.push(namedMessage(B, buf, start, portalEnd + 1, nameEnd, end, stmt.server));
    this.queue.push(entry(Reply.One, Mode.Forward));
    return false;
  }

  private describeOrClose(type: number, buf: Buffer, start: number, end: number): boolean {
    this.unsynced = true;
    const reply = type === D ? Reply.Describe : Reply.One;
    const nameEnd = end - start >= 2 ? nulAt(buf, start + 1, end) : -1;
    if (buf[start] !== STATEMENT || nameEnd <= start + 1) {
      this.queue.push(entry(reply, Mode.Forward));
      return true;
    }
    const name = buf.toString('utf8', start + 1, nameEnd);
    const stmt = this.statements.get(name);
    if (stmt === undefined) {
      this.queue.push(entry(reply, Mode.Forward));
      return true;
    }
    this.endRunBeforeCurrent();
    if (type === C) {
      // Other clients may use the statement on the server: only this client forgets it.
      this.statements.delete(name);
      this.queue.push(entry(Reply.One, Mode.Synthetic, CLOSE_COMPLETE, Tag.ClientClose, name, '', stmt));
      releaseStatement(stmt);
      return false;
    }
    this.ensure(stmt);
    this.toServer.push(namedMessage(D, buf, start, start + 1, nameEnd, end, stmt.server));
    this.queue.push(entry(Reply.Describe, Mode.Forward));
    return false;
  }

  /** QueueSink: a synthetic answer's turn. */
  emit(bytes: Buffer): void {
    // After the server message that completed the entry before it.
    if (this.sChunk !== null) this.endServerRun(this.sEnd);
    this.toClient.push(bytes);
  }

  /** QueueSink: the message of `e` did not take effect on the server. */
  undone(e: Entry): void {
    const conn = this.conn;
    switch (e.tag) {
      case Tag.ClientParse: {
        const stmt = e.ref as Statement;
        if (this.statements.get(e.name) === stmt) {
          this.statements.delete(e.name);
          releaseStatement(stmt);
        }
        if (e.server !== '') conn?.prepared.delete(e.server);
        break;
      }
      case Tag.InsertedParse:
        conn?.prepared.delete(e.server);
        break;
      case Tag.ClientClose: {
        const stmt = e.ref as Statement;
        if (!this.statements.has(e.name)) {
          this.statements.set(e.name, stmt);
          retain(stmt);
        }
        break;
      }
      case Tag.Evict:
        conn?.prepared.add(e.server);
        break;
    }
  }

  /** After a client chunk: sends what it made, ends a terminated session, and gives back a
   * connection that was lent for nothing to answer (a lone Flush). */
  private afterClient(): void {
    this.flushServer();
    if (this.terminated) {
      this.giveBack(this.reusable() ? 'idle' : 'broken');
      this.endClient(null);
      return;
    }
    // A message still arriving keeps the connection: giving it back now would only borrow again.
    if (this.conn !== null && this.reusable() && this.cFill === 0 && this.cCollect === null) this.giveBack('idle');
    this.flushClient();
  }

  private reusable(): boolean {
    return this.status === IDLE && this.queue.empty && !this.unsynced && this.cSkip === 0;
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
        if (this.sForward && this.sRun < 0) this.sRun = i;
        if (this.sBody !== null) {
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
      if (length < 4) {
        // Garbage from the server: nothing more of it can be trusted.
        this.endServerRun(start);
        this.sChunk = null;
        this.flushClient();
        conn.socket.destroy();
        return;
      }
      this.sType = type;
      this.sSkip = length - 4;
      const forward = this.queue.route(type);
      this.sForward = forward;
      if (!forward) this.endServerRun(start);
      else if (!inChunk) {
        this.toClient.push(Buffer.from(this.sHeader));
        this.sRun = i;
      } else if (this.sRun < 0) this.sRun = start;
      this.sBody = type === READY || type === PARAMETER_STATUS ? Buffer.allocUnsafe(this.sSkip) : null;
      this.sBodyFill = 0;
      if (this.sSkip === 0 && this.messageEnd(i)) break;
    }
    this.endServerRun(i);
    this.sChunk = null;
    // Given back at ReadyForQuery 'I': what follows belongs to the pool.
    if (i < n && this.conn !== conn) conn.rest = Buffer.from(chunk.subarray(i));
    this.flushClient();
  }

  /** Passes the server run [sRun, end) of the current chunk to the client, if any. */
  private endServerRun(end: number): void {
    if (this.sRun >= 0 && this.sChunk !== null && end > this.sRun) this.toClient.push(this.sChunk.subarray(this.sRun, end));
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
    if (type === READY && body !== null && body.length >= 1) {
      this.status = body[0]!;
      if (this.reusable()) {
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
    this.queue.reset();
    this.lender.release(conn, 'broken');
    this.o.onReturn?.(conn);
    if (this.clientGone) return;
    const expectedMore = !this.clientEnded && !this.terminated;
    const atBoundary = this.observer.serverAtBoundary && this.observer.serverLastType !== BackendCode.ErrorResponse;
    this.clientGone = true;
    this.endClient(expectedMore && atBoundary ? SERVER_GONE : null);
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
    this.queue.reset();
    this.sFill = 0;
    this.sSkip = 0;
    this.sBody = null;
    this.lender.release(conn, state);
    this.o.onReturn?.(conn);
  }

  // ---- to the client

  private flushClient(): void {
    if (this.holding) return;
    const list = this.toClient;
    if (list.length === 0) return;
    this.toClient = [];
    for (let i = 0; i < list.length; i++) {
      this.bytesToClient += list[i]!.length;
      this.observer.fromServer(list[i]!);
    }
    const wait = this.o.hold?.() ?? null;
    if (wait === null) {
      this.writeClient(list);
      return;
    }
    this.holding = true;
    this.conn?.socket.pause();
    const go = () => {
      this.holding = false;
      this.writeClient(list);
      if (this.endAfterHold !== undefined) {
        const last = this.endAfterHold;
        this.endAfterHold = undefined;
        this.endClient(last);
        return;
      }
      if (this.conn !== null && !this.client.writableNeedDrain) this.conn.socket.resume();
      this.flushClient();
    };
    void wait.then(go, go);
  }

  private writeClient(list: Buffer[]): void {
    if (this.client.destroyed) return;
    const c = this.client;
    c.cork();
    let ok = true;
    for (let i = 0; i < list.length; i++) ok = c.write(list[i]!);
    c.uncork();
    if (!ok) this.conn?.socket.pause();
  }

  /** Ends the client's stream after what it is owed (and `last`, when given). */
  private endClient(last: Buffer | null): void {
    this.flushClient();
    if (this.holding) {
      this.endAfterHold = last;
      return;
    }
    if (last !== null) this.client.end(last);
    else this.client.end();
  }

  private protocolFailure(): void {
    this.clientGone = true;
    this.giveBack('broken');
    this.client.destroy();
  }

  private clientClosed(): void {
    this.clientGone = true;
    this.giveBack(this.reusable() ? 'idle' : 'broken');
    for (const stmt of this.statements.values()) releaseStatement(stmt);
    this.statements.clear();
    if (this.ended) return;
    this.ended = true;
    this.observer.end();
    this.o.onEnd({ bytesFromClient: this.bytesFromClient, bytesToClient: this.bytesToClient });
  }
}

function header(type: number, bodyLength: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = type;
  h.writeInt32BE(bodyLength + 4, 1);
  return h;
}

/** Marks a statement as just used (a Set keeps insertion order: the first is the least recent). */
function touch(set: Set<string>, name: string): void {
  set.delete(name);
  set.add(name);
}
