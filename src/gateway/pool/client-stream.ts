// The client's side of a transaction-mode session: what each client message becomes on the
// server connection lent now. The stream is framed once, as it arrives (client-framing.ts, which
// also hands the messages to the session's observer); they are handled here at once when a
// connection is lent, else when one is. Messages are passed on as views of the chunk they came
// in (a run of them is one view); only what the gateway rewrites is copied: a named statement's
// Parse, Bind, Describe and Close (the gateway's own name, see prepared.ts), a Parse the
// connection lacks inserted before its first use, an evicted statement's Close. Each message
// pushes what it expects back on the response queue, and the gateway's own answers
// (ParseComplete for a statement the connection has, CloseComplete, an error that skips to Sync)
// go there too, to be sent in order.
import { errorResponse, FrontendCode, type SessionObserver } from '../../pgwire/index.js';
import { header, LISTEN_ERROR, LISTEN_QUERY, touch } from './client-messages.js';
import { ClientFraming, Kind } from './client-framing.js';
import type { ServerConnection } from './types.js';
import { entry, Mode, Reply, type ResponseQueue, Tag, type Entry } from './response-queue.js';
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

export { LISTEN_MESSAGE } from './client-messages.js';

export interface StatementLimits {
  /** Statements the gateway keeps prepared on one server connection (least recently used evicted). */
  readonly perServer: number;
  /** Named statements one client may hold. */
  readonly perClient: number;
}

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

export class ClientStream {
  /** The connection lent now (set by the relay); handle() is only called with one. */
  conn: ServerConnection | null = null;
  /** What goes to the server, in order, since the relay last took it. */
  toServer: Buffer[] = [];
  /** The client's Terminate was handled (or came with no connection lent): the session ends. */
  terminated = false;
  /** Handling reached a message the client's stream could not be framed at: the session must end. */
  failed = false;
  /** Something was sent since the last Sync or Query (the server is inside an extended-query sequence). */
  unsynced = false;
  /** The gateway answered an error itself: the client's messages up to its Sync are dropped. */
  private discard = false;
  /** The client's named statements. */
  private readonly statements = new Map<string, Statement>();

  private readonly framing: ClientFraming;
  /** Where the stream was when the messages not handled yet began to arrive (what the relay
   * must go by until they are handled: their server connection is not lent yet). */
  private handledBoundary = true;
  private handledStreaming = false;
  /** The streamed message being passed on goes to the server. */
  private forward = false;
  /** The forwarded run of the current chunk. */
  private runChunk: Buffer | null = null;
  private runStart = -1;

  constructor(
    private readonly queue: ResponseQueue,
    private readonly limits: StatementLimits,
    observer: SessionObserver,
  ) {
    this.framing = new ClientFraming(observer);
  }

  /** Between two messages (as far as they are handled). */
  get atBoundary(): boolean {
    return this.framing.count === 0 ? this.framing.atBoundary : this.handledBoundary;
  }

  /** Something of a streamed message (CopyData, Execute...) is half passed on. */
  get streaming(): boolean {
    return this.framing.count === 0 ? this.framing.streaming : this.handledStreaming;
  }

  /** Messages were framed that are not handled yet. */
  get waiting(): boolean {
    return this.framing.count > 0;
  }

  /** The client's session ended: its statements are forgotten. */
  forgetAll(): void {
    for (const stmt of this.statements.values()) releaseStatement(stmt);
    this.statements.clear();
  }

  /** A client chunk, as it arrives: framed (the observer sees its messages now), handled later. */
  push(chunk: Buffer): void {
    if (this.framing.count === 0) {
      this.handledBoundary = this.framing.atBoundary;
      this.handledStreaming = this.framing.streaming;
    }
    this.framing.push(chunk);
  }

  /** The client's Terminate, with no connection lent: what was framed is not handled. */
  terminateIdle(): void {
    this.terminated = true;
    this.framing.clear();
  }

  /** Handles the messages framed since the last call, in order; what goes to the server is
   * appended to toServer. Stops at a Terminate or a framing error. */
  handle(): void {
    const f = this.framing;
    for (let k = 0; k < f.count && !this.terminated && !this.failed; k++) {
      const kind = f.kinds[k]!;
      const type = f.types[k]!;
      const start = f.starts[k]!;
      switch (kind) {
        case Kind.Chunk:
          this.endChunk();
          this.runChunk = f.bufs[k]!;
          break;
        case Kind.Body:
          if (this.forward && this.runStart < 0) this.runStart = start;
          break;
        case Kind.Gap:
          this.endRun(start);
          break;
        case Kind.Whole: {
          const body = f.bodies[k]!;
          const length = f.lengths[k]!;
          this.currentStart = start;
          // Passed on as it came: the run goes on over it (no copy).
          if (this.whole(type, this.runChunk!, body, body + length)) {
            if (start >= 0) {
              if (this.runStart < 0) this.runStart = start;
            } else {
              this.toServer.push(header(type, length));
              this.runStart = body;
            }
          } else this.endRun(start);
          break;
        }
        case Kind.Streamed: {
          const forward = this.streamed(type);
          this.forward = forward;
          if (!forward) this.endRun(start);
          else if (start < 0) {
            this.toServer.push(header(type, f.lengths[k]!));
            this.runStart = f.bodies[k]!;
          } else if (this.runStart < 0) this.runStart = start;
          break;
        }
        case Kind.Collected: {
          const buf = f.bufs[k]!;
          const length = f.lengths[k]!;
          this.currentStart = -1;
          if (this.whole(type, buf, 0, length)) {
            this.toServer.push(header(type, length));
            this.toServer.push(buf.subarray(0, length));
          }
          break;
        }
        case Kind.Failed:
          this.failed = true;
          break;
      }
    }
    // What was passed on of the chunk the session failed in is never sent (the session ends).
    if (!this.failed) this.endChunk();
    this.runChunk = null;
    f.clear();
  }

  /** The current chunk ended: its run is passed on. */
  private endChunk(): void {
    if (this.runChunk !== null) this.endRun(this.runChunk.length);
    this.runStart = -1;
  }

  /** Passes on the run [runStart, end) of the current chunk, if any. */
  private endRun(end: number): void {
    if (this.runStart >= 0 && this.runChunk !== null) {
      if (end > this.runStart) this.toServer.push(this.runChunk.subarray(this.runStart, end));
    }
    this.runStart = -1;
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

  /** Position of the current whole message's header in the run chunk (set by handle(); -1: its
   * header was cut between chunks, or its body collected). */
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

  /** The message of `e` did not take effect on the server: what it did here is undone. */
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
}
