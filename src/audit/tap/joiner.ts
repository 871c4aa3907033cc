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
// Outcomes are per statement, as the server answered it (as in pgAudit): a statement that
// succeeded keeps 'success' when its transaction is rolled back later.

import type { Classifier, StatementInfo } from '../classify/index.js';
import type { BackendEvent, FrontendEvent, ParamValue } from './events.js';
import { PendingQueue } from './pending-queue.js';
import { functionCallInfo, single, unknownInfo } from './placeholders.js';
import { PreparedStatements } from './prepared.js';
import { statementEvent, type MutableEvent, type Protocol, type StatementEvent, type StatementResult } from './statement-event.js';

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
  /** Unanswered messages tracked before the joiner gives up (default 100000). */
  readonly maxPending?: number;
  /** Named prepared statements and portals remembered (default 10000 each, oldest dropped). */
  readonly maxPrepared?: number;
}

/** Events held for a segment's ReadyForQuery at most. */
const MAX_HELD = 1024;

type Pending =
  | { kind: 'query'; infos: readonly StatementInfo[]; next: number; mark: number; truncated: boolean; copyBytes: number }
  | { kind: 'execute'; info: StatementInfo; params: readonly ParamValue[] | undefined; start: number; truncated: boolean; copyBytes: number }
  | { kind: 'parse'; name: string; info: StatementInfo; start: number; truncated: boolean }
  | { kind: 'function'; oid: number; args: readonly ParamValue[] | undefined; start: number }
  | { kind: 'sync' };

type Result = StatementResult;

const SYNC: Pending = { kind: 'sync' };

export class StatementJoiner {
  private readonly queue = new PendingQueue<Pending>();
  private readonly prepared: PreparedStatements;
  /** Events of the current segment, emitted at ReadyForQuery. */
  private held: MutableEvent[] = [];
  private spare: MutableEvent[] = [];
  /** The segment's last statement, null when it was filtered out (or none yet). */
  private last: MutableEvent | null = null;
  private copyTarget: Pending | null = null;
  private readonly now: () => number;
  private readonly maxPending: number;
  private failure: string | null = null;

  constructor(private readonly options: JoinerOptions) {
    this.now = options.now ?? (() => performance.now());
    this.maxPending = options.maxPending ?? 100_000;
    this.prepared = new PreparedStatements(options.maxPrepared ?? 10_000);
  }

  /** Why the joiner stopped (too much unanswered), or null. */
  get error(): string | null {
    return this.failure;
  }

  frontend(e: FrontendEvent): void {
    if (this.failure !== null) return;
    switch (e.type) {
      case 'query':
        this.push({ kind: 'query', infos: this.options.classifier.classify(e.text), next: 0, mark: this.now(), truncated: e.truncated, copyBytes: 0 });
        return;
      case 'parse': {
        const info = single(this.options.classifier.classify(e.text));
        this.prepared.setStatement(e.name, { info, truncated: e.truncated });
        this.push({ kind: 'parse', name: e.name, info, start: this.now(), truncated: e.truncated });
        return;
      }
      case 'bind':
        this.prepared.bind(e.portal, e.statement, e.params);
        return;
      case 'execute': {
        const portal = this.prepared.portal(e.portal);
        this.push({ kind: 'execute', info: portal.info, params: portal.params, start: this.now(), truncated: portal.truncated, copyBytes: 0 });
        return;
      }
      case 'functionCall':
        this.push({ kind: 'function', oid: e.oid, args: e.args, start: this.now() });
        return;
      case 'close':
        if (e.target === 'portal') this.prepared.closePortal(e.name);
        else this.prepared.setStatement(e.name, undefined);
        return;
      case 'sync':
        this.push(SYNC);
        return;
      case 'copyData': {
        const target = this.copyTarget ?? this.queue.peek();
        if (target !== undefined && (target.kind === 'query' || target.kind === 'execute')) target.copyBytes += e.bytes;
        return;
      }
      case 'terminate':
        return;
    }
  }

  backend(e: BackendEvent): void {
    if (this.failure !== null) return;
    const head = this.queue.peek();
    switch (e.type) {
      case 'parseComplete':
        this.queue.removeFirst('parse');
        return;
      case 'commandComplete':
        if (head?.kind === 'query') {
          const info = head.infos[head.next++] ?? unknownInfo('more results than statements');
          const copyBytes = head.copyBytes + e.copyBytes;
          head.copyBytes = 0;
          this.record(info, head.mark, 'simple', head.truncated, undefined, { tag: e.tag, rows: e.rows, copyBytes });
          head.mark = this.now();
        } else if (head?.kind === 'execute') {
          this.queue.pop();
          this.record(head.info, head.start, 'extended', head.truncated, head.params, { tag: e.tag, rows: e.rows, copyBytes: head.copyBytes + e.copyBytes });
        }
        return;
      case 'portalSuspended':
        if (head?.kind === 'execute') {
          this.queue.pop();
          this.record(head.info, head.start, 'extended', head.truncated, head.params, { rows: e.dataRows, copyBytes: head.copyBytes });
        }
        return;
      case 'emptyQuery':
        if (head?.kind === 'execute') this.queue.pop();
        return;
      case 'functionResult':
        if (head?.kind === 'function') this.record(functionCallInfo(head.oid), head.start, 'function', false, head.args, {});
        return;
      case 'copyIn':
        this.copyTarget = head ?? null;
        return;
      case 'copyOut':
        return;
      case 'error':
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
    this.flush();
  }

  /** Stops the joiner (a tap failed): what was seen is emitted, outcome 'unknown' where unanswered. */
  stop(reason: string): void {
    if (this.failure !== null) return;
    this.end();
    this.failure = reason;
  }

  private fail(head: Pending | undefined, failure: { sqlstate: string; message: string }): void {
    switch (head?.kind) {
      case 'query': {
        const info = head.infos[head.next];
        if (info === undefined) break; // every statement answered: a failed implicit commit
        head.next = head.infos.length; // the rest of the string does not run
        this.record(info, head.mark, 'simple', head.truncated, undefined, { failure });
        return;
      }
      case 'execute':
      case 'parse': {
        this.queue.pop();
        if (head.kind === 'parse') this.prepared.setStatement(head.name, undefined); // the server has no such statement
        this.skipToSync();
        this.record(head.info, head.start, 'extended', head.truncated, head.kind === 'execute' ? head.params : undefined, { failure });
        return;
      }
      case 'function':
        this.record(functionCallInfo(head.oid), head.start, 'function', false, head.args, { failure });
        return; // stays queued until its ReadyForQuery
    }
    const last = this.last;
    if (last !== null && last.outcome === 'success') {
      last.outcome = 'failure';
      last.sqlstate = failure.sqlstate;
      last.errorMessage = this.redactMessage(failure.message);
    }
  }

  private ready(status: string): void {
    for (let item = this.queue.pop(); item !== undefined; item = this.queue.pop()) {
      this.abandon(item); // anything unanswered before the item this ReadyForQuery closes
      if (item.kind === 'sync' || item.kind === 'function' || item.kind === 'query') break;
    }
    this.copyTarget = null;
    if (status === 'I') this.prepared.endTransaction();
    this.flush();
  }

  /** Items the server will never answer: dropped after an error, up to the Sync. */
  private skipToSync(): void {
    for (let item = this.queue.peek(); item !== undefined && item.kind !== 'sync'; item = this.queue.peek()) {
      this.queue.pop();
      if (item.kind === 'parse') this.prepared.setStatement(item.name, undefined); // skipped: never prepared
    }
  }

  private abandon(item: Pending): void {
    if (item.kind === 'query') {
      while (item.next < item.infos.length) {
        this.record(item.infos[item.next++]!, item.mark, 'simple', item.truncated, undefined, { unknown: true });
      }
    } else if (item.kind === 'execute') {
      this.record(item.info, item.start, 'extended', item.truncated, item.params, { unknown: true });
    }
  }

  private record(
    info: StatementInfo,
    start: number,
    protocol: Protocol,
    truncated: boolean,
    params: readonly ParamValue[] | undefined,
    result: Result,
  ): void {
    if (this.options.include !== undefined && !this.options.include(info)) {
      this.last = null;
      return;
    }
    const failure = result.failure;
    const event = statementEvent(
      info,
      protocol,
      Math.max(0, this.now() - start),
      truncated,
      this.options.logParameters && params !== undefined ? this.redactParams(info, params) : undefined,
      result,
      failure ? this.redactMessage(failure.message) : undefined,
    );
    if (this.held.length >= MAX_HELD) this.flush(); // a long segment: stop waiting for its end
    this.held.push(event);
    this.last = event;
  }

  private redactParams(info: StatementInfo, params: readonly ParamValue[]): readonly ParamValue[] {
    const classifier = this.options.classifier;
    return params.map((v, i) => (v !== null && (info.redactParams.includes(i + 1) || classifier.redactsValue(v)) ? '<redacted>' : v));
  }

  /** Error messages can quote values (invalid input syntax for ...: "value"). */
  private redactMessage(message: string): string {
    return this.options.classifier.redactsValue(message) ? '<redacted>' : message;
  }

  private flush(): void {
    this.last = null;
    const events = this.held;
    if (events.length === 0) return;
    this.held = this.spare;
    this.spare = events;
    for (const event of events) this.options.onStatement(event);
    events.length = 0;
  }

  private push(item: Pending): void {
    if (this.queue.size >= this.maxPending) {
      this.stop(`more than ${this.maxPending} unanswered messages`);
      return;
    }
    this.queue.push(item);
  }
}
