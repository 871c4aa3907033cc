// One observer per relayed session: each direction is framed once (one decoder per direction)
// and the typed events go to every consumer that subscribed (the statement audit, the SQL watch).
// The relay reads where each stream is from the same pass: whether the server is between two
// messages (so a session ended by the gateway gets an error, not half a message), the type of its
// last message, and whether the client sent Terminate.
// A consumer that throws is detached and told why; the others go on. A framing error (garbage
// on the wire) stops the direction for every consumer, each told once.

import type { BackendEvent, FrontendEvent } from './events.js';
import { FrontendDecoder } from './frontend-decoder.js';
import { BackendDecoder } from './backend-decoder.js';

/** What a consumer of a relayed session receives. Every method is optional. */
export interface SessionConsumer {
  /** How the client's messages must be decoded for this consumer (merged over all consumers). */
  readonly decode?: DecodeNeeds;
  frontend?(event: FrontendEvent): void;
  backend?(event: BackendEvent): void;
  /** The observer stopped following the session for this consumer (framing error, or the consumer threw). */
  failed?(reason: string): void;
  /** The session ended. */
  end?(): void;
  /** Right after a 'query' or 'parse' event: this consumer needs nothing of that statement or
   * its answer, nor of any that differs from it only in literal values, so the native relay may
   * relay those unobserved (see RelayOptions.quietSet). Absent: false. */
  quietable?(): boolean;
  /** Right after a 'query' event, when not quietable: this consumer needs of such a Query only
   * its summary (its text, when it was sent and answered, its command tag; when its answer
   * succeeds), and what it returns to make its record of one (`summarized`). Absent: null. */
  summary?(): QuerySummary | null;
  /** A Query of a shape this consumer summarized (`summary`) was answered with success: `text`
   * its text, `at` when it was sent, `end` when its CommandComplete came (clock ms), `tag` that
   * message's tag (null: none came). */
  summarized?(summary: QuerySummary, text: string, at: number, end: number, tag: string | null): void;
}

/** What a consumer keeps of a summarized Query's shape, opaque to the observer. */
export type QuerySummary = object;

export interface DecodeNeeds {
  /** Decode Bind and FunctionCall values. */
  readonly logParameters?: boolean;
  /** Query and Parse texts are cut after this many bytes. */
  readonly maxStatementBytes?: number;
  readonly maxParameterBytes?: number;
  /** Measure (length, SHA-256) the whole text of a cut Query or Parse. */
  readonly measureCut?: boolean;
}

export class SessionObserver {
  private readonly front: FrontendDecoder;
  private readonly back: BackendDecoder;
  private consumers: SessionConsumer[];
  private ended = false;
  /** The client sent Terminate (at a message boundary). */
  clientTerminated = false;
  /** The native relay's shape key of the Query or Parse that comes next. */
  private shapeKey: Buffer | null = null;

  /**
   * `skipRecords`: the bytes come from the native relay's 'observe' events, whose runs of
   * DataRow and CopyData are skip-run records (see DecoderOptions.skipRecords), and whose keyed
   * Queries come after a key record. `onQuiet`: called with a keyed Query's shape key when every
   * consumer says it needs nothing of such a Query (`quietable`), or, with its summary, when one
   * consumer needs only its summary and every other one nothing.
   */
  constructor(
    consumers: readonly SessionConsumer[],
    options: { readonly skipRecords?: boolean; readonly onQuiet?: (key: Buffer, summary?: QuerySummary) => void } = {},
  ) {
    this.consumers = [...consumers];
    const skipRecords = options.skipRecords === true;
    const onQuiet = skipRecords ? options.onQuiet : undefined;
    const needs = mergeNeeds(this.consumers);
    this.front = new FrontendDecoder({
      onEvent: (e) => {
        if (e.type === 'terminate') this.clientTerminated = true;
        const key = this.shapeKey;
        this.shapeKey = null;
        const list = this.consumers;
        for (let i = 0; i < list.length; i++) {
          const c = list[i]!;
          if (c.frontend === undefined) continue;
          try {
            c.frontend(e);
          } catch (err) {
            this.detach(c, err);
          }
        }
        if (key !== null && (e.type === 'query' || e.type === 'parse') && onQuiet !== undefined) this.judge(key, e.type === 'query', onQuiet);
      },
      onError: (reason) => this.fail(reason),
      ...(onQuiet !== undefined ? { onShapeKey: (key: Buffer) => (this.shapeKey = key) } : {}),
      ...needs,
      skipRecords,
      boundariesOnly: this.consumers.length === 0,
    });
    this.back = new BackendDecoder({
      onEvent: (e) => {
        const list = this.consumers;
        for (let i = 0; i < list.length; i++) {
          const c = list[i]!;
          if (c.backend === undefined) continue;
          try {
            c.backend(e);
          } catch (err) {
            this.detach(c, err);
          }
        }
      },
      onError: (reason) => this.fail(reason),
      skipRecords,
      boundariesOnly: this.consumers.length === 0,
    });
  }

  /** The server's stream is between two messages. */
  get serverAtBoundary(): boolean {
    return this.back.atBoundary;
  }

  /** Status byte of the server's last ReadyForQuery ('I' before any). */
  get serverReadyStatus(): number {
    return this.back.readyStatus;
  }

  /** ReadyForQuery messages the server sent so far. */
  get serverReadyCount(): number {
    return this.back.readyCount;
  }

  /** Type byte of the server's last message (0: none yet). */
  get serverLastType(): number {
    return this.back.lastType;
  }

  /** Bytes from the client, before the relay writes them to the server. Never throws. */
  fromClient(chunk: Buffer): void {
    this.front.push(chunk);
  }

  /** Bytes from the server, before the relay writes them to the client. Never throws. */
  fromServer(chunk: Buffer): void {
    this.back.push(chunk);
  }

  /** The header of a server message the relay framed itself (transaction mode: it reads every
   * header to route the server's answers), instead of its bytes through fromServer(): the message
   * is framed once. Its body bytes follow through serverBody(). Never throws. */
  serverHeader(type: number, length: number): void {
    this.back.pushHeader(type, length);
  }

  /** Body bytes buf[start, end) of the server message given to serverHeader(). Never throws. */
  serverBody(buf: Buffer, start: number, end: number): void {
    this.back.pushBody(buf, start, end);
  }

  /** The header of a client message the relay framed itself (transaction mode: it frames the
   * client's stream as it arrives, and hands the messages to a server connection when one is
   * lent), instead of its bytes through fromClient(). Its body bytes follow through clientBody(),
   * and clientChunkEnd() after each chunk. A length under 4 fails the observer as fromClient()
   * would. Never throws. */
  clientHeader(type: number, length: number): void {
    this.front.pushHeader(type, length);
  }

  /** Body bytes buf[start, end) of the client message given to clientHeader(). Never throws. */
  clientBody(buf: Buffer, start: number, end: number): void {
    this.front.pushBody(buf, start, end);
  }

  /** The client's chunk given through clientHeader()/clientBody() ended: its COPY data is
   * reported per chunk, as fromClient() does. Never throws. */
  clientChunkEnd(): void {
    this.front.pushEnd();
  }

  /** The session ended: each consumer is told once. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const list = this.consumers;
    this.consumers = [];
    for (const c of list) {
      try {
        c.end?.();
      } catch {
        // A consumer's end must not keep the others from theirs.
      }
    }
  }

  /** Quiet when every consumer (at least one) needs nothing of the statement just dispatched;
   * summarized when one needs only a Query's summary and every other one nothing. */
  private judge(key: Buffer, query: boolean, onQuiet: (key: Buffer, summary?: QuerySummary) => void): void {
    const list = this.consumers;
    if (list.length === 0) return;
    let summarized: QuerySummary | undefined;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (c.quietable?.() === true) continue;
      const summary = query && summarized === undefined ? (c.summary?.() ?? null) : null;
      if (summary === null) return;
      summarized = summary;
    }
    onQuiet(key, summarized);
  }

  /** A summarized Query was answered (the native relay's 'summary' event): to the consumer
   * that summarized its shape. Never throws. */
  summarized(summary: QuerySummary, text: string, at: number, end: number, tag: string | null): void {
    const list = this.consumers;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (c.summarized === undefined) continue;
      try {
        c.summarized(summary, text, at, end, tag);
      } catch (err) {
        this.detach(c, err);
      }
    }
  }

  private detach(c: SessionConsumer, err: unknown): void {
    this.consumers = this.consumers.filter((x) => x !== c);
    c.failed?.(`audit tap failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** Every consumer is told the session cannot be followed (a framing error, here or where the
   * bytes were framed: the native relay), and none is called again. */
  fail(reason: string): void {
    const list = this.consumers;
    this.consumers = [];
    for (const c of list) {
      try {
        c.failed?.(reason);
      } catch {
        // Told; nothing more to do for it.
      }
    }
  }
}

function mergeNeeds(consumers: readonly SessionConsumer[]): DecodeNeeds {
  let logParameters = false;
  let measureCut = false;
  let maxStatementBytes = 0;
  let maxParameterBytes: number | undefined;
  for (const c of consumers) {
    const d = c.decode;
    if (d === undefined) continue;
    logParameters ||= d.logParameters === true;
    measureCut ||= d.measureCut === true;
    maxStatementBytes = Math.max(maxStatementBytes, d.maxStatementBytes ?? 1024 * 1024);
    if (d.maxParameterBytes !== undefined) maxParameterBytes = Math.max(maxParameterBytes ?? 0, d.maxParameterBytes);
  }
  return {
    logParameters,
    measureCut,
    ...(maxStatementBytes > 0 ? { maxStatementBytes } : {}),
    ...(maxParameterBytes !== undefined ? { maxParameterBytes } : {}),
  };
}
