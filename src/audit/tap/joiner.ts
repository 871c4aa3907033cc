// Pairs each statement a client runs with its outcome, in protocol order. The server answers
// messages in the order it receives them, so a queue of what is still unanswered is enough:
//   simple Query: one CommandComplete per statement, then ReadyForQuery; an error ends the query
//     (later statements of the string never run);
//   extended protocol: Parse (answered by ParseComplete), Execute (CommandComplete,
//     PortalSuspended or EmptyQueryResponse), Sync (ReadyForQuery); an error answers the oldest
//     unanswered Parse or Execute and makes the server skip everything up to the next Sync;
//   FunctionCall: FunctionCallResponse or an error, then ReadyForQuery.
// An error with nothing left to answer (a failed implicit commit at Sync) fails the segment's last
// statement. Events are held until ReadyForQuery so that can still be applied, then emitted.
// COPY FROM STDIN (and copy-both) is followed as the server does it (copy-mode.ts): Syncs sent in
// copy mode are not waited for. A client may send messages before the server's answer reaches
// the tap, so while a statement that can start a copy is unanswered, runs of Sync/CopyData and
// markers for the other messages are queued and judged when the answer comes. What the tap cannot judge exactly (any
// other message inside the copy, which the server refuses; Syncs inside copy data when the copy
// then fails) stops the audit: the session is ended, never left unaudited.
// Outcomes are per statement, as the server answered it (as in pgAudit): a statement that
// succeeded keeps 'success' when its transaction is rolled back later.

import type { Classifier, StatementInfo } from '../classify/index.js';
import { splitTag, type BackendEvent, type FrontendEvent, type FullText } from '../../pgwire/observer/index.js';
import { CopyMode } from './copy-mode.js';
import { COPY_END, OTHER, type Pending, type Statement } from './pending.js';
import { PendingQueue } from './pending-queue.js';
import { functionCallInfo, single, unknownInfo } from './placeholders.js';
import { PreparedStatements, type Prepared } from './prepared.js';
import { DEALLOCATE, PREPARE, statementName } from './sql-prepare.js';
import { SegmentEvents } from './segment-events.js';
import { DEFAULT_MAX_TEXT_BYTES, keptText, type StatementEvent, type StatementResult } from './statement-event.js';
import { quietShape, shapeSummary, type LastStatements, type QuerySummary } from './quiet-shapes.js';

export type { QuerySummary } from './quiet-shapes.js';

export interface JoinerOptions {
  readonly classifier: Classifier;
  /** Receives each statement once; must not throw. */
  readonly onStatement: (event: StatementEvent) => void;
  /** Put bind/function-call values in events (the frontend tap must decode them). */
  readonly logParameters?: boolean;
  /** Only statements this accepts become events (default: all). */
  readonly include?: (info: StatementInfo) => boolean;
  /** Milliseconds clock (default performance.now). */
  readonly now?: () => number;
  /** Unanswered messages tracked before the joiner stops (default 100000; runs of Sync count once). */
  readonly maxPending?: number;
  /** Bytes the named prepared statements and portals may hold (default 32 MiB); beyond it the joiner stops. */
  readonly maxPreparedBytes?: number;
  /** Bytes of statement text an event keeps (default 8 KiB); longer texts are cut, with their length and SHA-256. */
  readonly maxTextBytes?: number;
}

export class StatementJoiner {
  private readonly queue = new PendingQueue<Pending>();
  private readonly prepared: PreparedStatements;
  /** Events of the current segment, emitted at ReadyForQuery. */
  private readonly events: SegmentEvents;
  /** COPY FROM STDIN as the server runs it. */
  private readonly copy = new CopyMode();
  /** Queued statements that may start a copy. */
  private copyCapable = 0;
  private seq = 0;
  private readonly now: () => number;
  private readonly maxPending: number;
  private readonly maxTextBytes: number;
  private failure: string | null = null;
  /** The statements of the last event when it was a whole Query or Parse (see `quietable`). */
  private lastStatements: LastStatements = null;
  /** The last event's text when it was a whole Query (see `summary`). */
  private lastQuery: string | null = null;

  constructor(private readonly options: JoinerOptions) {
    this.now = options.now ?? (() => performance.now());
    this.maxPending = options.maxPending ?? 100_000;
    this.maxTextBytes = options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES;
    this.prepared = new PreparedStatements(options.maxPreparedBytes ?? 32 * 1024 * 1024);
    const { classifier, onStatement, logParameters, include } = options;
    this.events = new SegmentEvents({ classifier, onStatement, logParameters, include, now: this.now });
  }

  /** Why the joiner stopped, or null. */
  get error(): string | null {
    return this.failure;
  }

  /** See quietShape (quiet-shapes.ts): the last event can go unobserved, as can any Query of its shape. */
  get quietable(): boolean {
    return quietShape(this.lastStatements, this.options.include);
  }

  /** See shapeSummary (quiet-shapes.ts): what any Query of the last one's shape needs for its record, or null. */
  get summary(): QuerySummary | null {
    return shapeSummary(this.lastQuery, this.lastStatements, this.options, this.maxTextBytes);
  }

  /** A Query of a shape `summary` described was answered with success (see SessionConsumer.summarized). */
  summarized(s: QuerySummary, query: string, start: number, end: number, tag: string | null): void {
    if (this.failure !== null) return;
    const { info, lead, trail } = s;
    const text = lead === 0 && trail === 0 ? query : query.slice(lead, query.length - trail);
    // A shorter text limit than the key's 8 KiB can cut a statement of the shape.
    const kept =
      text.length > this.maxTextBytes / 3 ? keptText({ ...info, text, redactedText: text }, false, undefined, this.maxTextBytes) : { text, full: undefined };
    let result: StatementResult = {};
    if (tag !== null) {
      const { command, rows } = splitTag(tag);
      result = rows === undefined ? { tag: command } : { tag: command, rows };
    }
    this.events.record(info, start, 'simple', kept, undefined, result, end);
    this.events.flush();
  }

  frontend(e: FrontendEvent): void {
    this.lastStatements = null;
    this.lastQuery = null;
    if (this.failure !== null) return;
    if (this.copy.copying) {
      this.inCopy(e);
      return;
    }
    switch (e.type) {
      case 'query': {
        const infos = this.options.classifier.classify(e.text);
        this.push({
          kind: 'query',
          infos,
          next: 0,
          mark: this.now(),
          truncated: e.truncated,
          full: e.full,
          copyBytes: 0,
          copy: infos.some(mayCopy),
          seq: ++this.seq,
        });
        if (!e.truncated) {
          this.lastStatements = infos;
          this.lastQuery = e.text;
        }
        return;
      }
      case 'parse': {
        const info = single(this.options.classifier.classify(e.text));
        if (!e.truncated) this.lastStatements = info;
        const previous = this.prepared.entry(e.name);
        const declared = this.keep(info, e.truncated, e.full);
        if (!this.prepared.setStatement(e.name, declared)) {
          this.stop(this.budgetExceeded());
          return;
        }
        this.push({ kind: 'parse', name: e.name, info, start: this.now(), truncated: e.truncated, full: e.full, declared, previous });
        return;
      }
      case 'bind':
        if (!this.prepared.bind(e.portal, e.statement, e.params, ++this.seq)) {
          this.stop(this.budgetExceeded());
          return;
        }
        this.marker(OTHER);
        return;
      case 'execute': {
        const portal = this.prepared.portal(e.portal);
        this.push({
          kind: 'execute',
          info: portal.info,
          params: portal.params,
          start: this.now(),
          truncated: portal.truncated,
          full: portal.full,
          copyBytes: 0,
          copy: mayCopy(portal.info),
          seq: ++this.seq,
        });
        return;
      }
      case 'functionCall':
        this.push({ kind: 'function', oid: e.oid, args: e.args, start: this.now() });
        return;
      case 'close':
        this.push({ kind: 'close', target: e.target, name: e.name, seq: ++this.seq });
        return;
      case 'sync':
        this.run(1, 0);
        return;
      case 'copyData':
        // Outside a copy the server ignores CopyData; it matters only if a copy may be starting.
        if (this.copyCapable > 0) this.run(0, e.bytes);
        return;
      case 'copyDone':
      case 'copyFail':
        this.marker(COPY_END);
        return;
      case 'other':
        this.marker(OTHER);
        return;
      case 'terminate':
        return;
      case 'unnamedReplaced':
        this.prepared.forgetUnnamed();
        return;
    }
  }

  backend(e: BackendEvent): void {
    if (this.failure !== null) return;
    const head = this.head();
    switch (e.type) {
      case 'parseComplete':
        this.queue.removeFirst('parse');
        return;
      case 'closeComplete': {
        const close = this.queue.removeFirst('close');
        if (close?.kind !== 'close') return;
        if (close.target === 'portal') this.prepared.closePortal(close.name, close.seq);
        else this.prepared.closeStatement(close.name, close.seq);
        return;
      }
      case 'commandComplete':
        if (head?.kind === 'query') {
          const info = head.infos[head.next++] ?? unknownInfo('more results than statements');
          const copyBytes = head.copyBytes + e.copyBytes;
          head.copyBytes = 0;
          this.sqlPrepared(info, e.tag, head.seq, head.truncated, head.full);
          // One reading of the clock ends this statement and starts the next one's time.
          const end = this.now();
          this.events.record(info, head.mark, 'simple', this.text(info, head.truncated, head.full), undefined, { tag: e.tag, rows: e.rows, copyBytes }, end);
          head.mark = end;
        } else if (head?.kind === 'execute') {
          this.take();
          this.sqlPrepared(head.info, e.tag, head.seq, head.truncated, head.full);
          this.events.record(head.info, head.start, 'extended', this.text(head.info, head.truncated, head.full), head.params, {
            tag: e.tag,
            rows: e.rows,
            copyBytes: head.copyBytes + e.copyBytes,
          });
        }
        if (head !== undefined && head === this.copy.target) this.copyEnded();
        return;
      case 'portalSuspended':
        if (head?.kind === 'execute') {
          this.take();
          this.events.record(head.info, head.start, 'extended', this.text(head.info, head.truncated, head.full), head.params, {
            rows: e.dataRows,
            copyBytes: head.copyBytes,
          });
        }
        return;
      case 'emptyQuery':
        if (head?.kind === 'execute') this.take();
        return;
      case 'functionResult':
        if (head?.kind === 'function') this.events.record(functionCallInfo(head.oid), head.start, 'function', NO_TEXT, head.args, {});
        return;
      case 'copyIn':
        if (head?.kind === 'query' || head?.kind === 'execute') this.copyStarted(head);
        return;
      case 'copyOut':
        return;
      case 'error':
        if (head !== undefined && head === this.copy.target) {
          if (this.copy.syncs > 0) {
            // The server left copy mode somewhere inside the client's data: whether it answers
            // the Syncs sent in between cannot be known.
            this.stop('Sync messages inside COPY data, and the COPY failed: the statements that follow cannot be told apart');
            return;
          }
          this.copyEnded();
        }
        this.fail(head, { sqlstate: e.sqlstate, message: e.message });
        return;
      case 'ready':
        this.ready(e.status);
        return;
    }
  }

  /** The session ended: everything still unanswered is emitted with outcome 'unknown'. */
  end(): void {
    for (const item of this.queue.drain()) this.abandon(item);
    this.copyCapable = 0;
    this.events.flush();
  }

  /** Stops the joiner (a tap failed): what was seen is emitted, outcome 'unknown' where unanswered. */
  stop(reason: string): void {
    if (this.failure !== null) return;
    this.end();
    this.failure = reason;
  }

  /** A client message while the server reads in copy mode. */
  private inCopy(e: FrontendEvent): void {
    const reason = this.copy.message(e);
    if (reason !== null) this.stop(reason);
  }

  /** CopyInResponse (or CopyBothResponse) for the head statement. */
  private copyStarted(target: Statement): void {
    const reason = this.copy.started(target, this.queue);
    if (reason !== null) this.stop(reason);
  }

  private copyEnded(): void {
    this.copy.ended();
  }

  /** The first item the server has still to answer; markers it has passed are dropped. */
  private head(): Pending | undefined {
    for (let item = this.queue.peek(); item !== undefined; item = this.queue.peek()) {
      if (item.kind === 'other' || item.kind === 'copyEnd' || (item.kind === 'sync' && item.count === 0)) this.queue.pop();
      else return item;
    }
    return undefined;
  }

  private take(): Pending | undefined {
    const item = this.queue.pop();
    if (item !== undefined && (item.kind === 'query' || item.kind === 'execute') && item.copy) this.copyCapable--;
    return item;
  }

  private fail(head: Pending | undefined, failure: { sqlstate: string; message: string }): void {
    switch (head?.kind) {
      case 'query': {
        const info = head.infos[head.next];
        if (info === undefined) break; // every statement answered: a failed implicit commit
        head.next = head.infos.length; // the rest of the string does not run
        this.events.record(info, head.mark, 'simple', this.text(info, head.truncated, head.full), undefined, { failure });
        return;
      }
      case 'execute':
      case 'parse': {
        this.take();
        if (head.kind === 'parse') this.prepared.restore(head.name, head.declared, head.previous); // the server did not take it
        this.skipToSync();
        const text = this.text(head.info, head.truncated, head.full);
        this.events.record(head.info, head.start, 'extended', text, head.kind === 'execute' ? head.params : undefined, { failure });
        return;
      }
      case 'function':
        this.events.record(functionCallInfo(head.oid), head.start, 'function', NO_TEXT, head.args, { failure });
        return; // stays queued until its ReadyForQuery
    }
    this.events.failLast(failure);
  }

  private ready(status: string): void {
    for (let item = this.queue.peek(); item !== undefined; item = this.queue.peek()) {
      if (item.kind === 'sync' && item.count > 1) {
        item.count--;
        item.bytes = 0;
        break;
      }
      this.take();
      this.abandon(item); // anything unanswered before the item this ReadyForQuery closes
      if ((item.kind === 'sync' && item.count === 1) || item.kind === 'function' || item.kind === 'query') break;
    }
    this.copyEnded();
    if (status === 'I') this.prepared.endTransaction();
    this.events.flush();
  }

  /** Items the server will never answer: dropped after an error, up to the Sync. */
  private skipToSync(): void {
    for (let item = this.queue.peek(); item !== undefined && !(item.kind === 'sync' && item.count > 0); item = this.queue.peek()) {
      this.take();
      if (item.kind === 'parse') this.prepared.restore(item.name, item.declared, item.previous); // skipped: never prepared
    }
  }

  private abandon(item: Pending): void {
    if (item.kind === 'query') {
      while (item.next < item.infos.length) {
        const info = item.infos[item.next++]!;
        this.events.record(info, item.mark, 'simple', this.text(info, item.truncated, item.full), undefined, { unknown: true });
      }
    } else if (item.kind === 'execute') {
      this.events.record(item.info, item.start, 'extended', this.text(item.info, item.truncated, item.full), item.params, { unknown: true });
    }
  }

  /**
   * SQL PREPARE succeeded: a Bind may execute it by name, so its statement is kept under that
   * name (the executed statement's event then carries the PREPARE's text and class, and the
   * server's command tag). DEALLOCATE / DISCARD ALL: the statements declared before it are gone.
   */
  private sqlPrepared(info: StatementInfo, tag: string, seq: number, truncated: boolean, full: FullText | undefined): void {
    if (tag === 'PREPARE') {
      const name = statementName(PREPARE, info.text);
      const current = name === null ? undefined : this.prepared.entry(name);
      if (name === null || name === '' || (current?.seq ?? 0) > seq) return;
      const kept = this.keep({ ...info, commandTag: '' }, truncated, full);
      if (!this.prepared.setStatement(name, { ...kept, seq })) this.stop(this.budgetExceeded());
    } else if (tag === 'DEALLOCATE ALL' || tag === 'DISCARD ALL') this.prepared.forgetBefore(seq, null);
    else if (tag === 'DEALLOCATE') {
      const name = statementName(DEALLOCATE, info.text);
      if (name !== null) this.prepared.forgetBefore(seq, name);
    }
  }

  private text(info: StatementInfo, truncated: boolean, full: FullText | undefined) {
    return keptText(info, truncated, full, this.maxTextBytes);
  }

  /** What a prepared statement keeps: a long text cut, with the measure of the whole. */
  private keep(info: StatementInfo, truncated: boolean, full: FullText | undefined): Prepared {
    const seq = ++this.seq;
    const text = keptText(info, truncated, full, this.maxTextBytes);
    if (text.full === undefined) return { info, truncated, seq };
    return { info: { ...info, text: '', redactedText: text.text }, truncated: true, full: text.full, seq };
  }

  private budgetExceeded(): string {
    return `the named prepared statements and portals of this session need more than the ${this.prepared.maxBytes} bytes the audit may hold for them (${this.prepared.heldBytes} held)`;
  }

  /** A Sync or CopyData: merged into the run at the tail of the queue. */
  private run(count: number, bytes: number): void {
    const tail = this.queue.last();
    if (tail?.kind === 'sync') {
      tail.count += count;
      tail.bytes += bytes;
      return;
    }
    this.push({ kind: 'sync', count, bytes });
  }

  /** A message that matters only if a copy is starting before it. */
  private marker(item: Pending): void {
    if (this.copyCapable > 0) this.push(item);
  }

  private push(item: Pending): void {
    if (this.queue.size >= this.maxPending) {
      this.stop(`more than ${this.maxPending} unanswered messages`);
      return;
    }
    if ((item.kind === 'query' || item.kind === 'execute') && item.copy) this.copyCapable++;
    this.queue.push(item);
  }
}

const NO_TEXT = Object.freeze({ text: '', full: undefined });

/** A statement that may put the server in copy-in or copy-both mode: a COPY, or one the parser refused (a replication command, a cut text). */
function mayCopy(info: StatementInfo): boolean {
  return info.commandTag === 'COPY' || info.class === 'UNKNOWN';
}
