// Statement audit of one session: a consumer of the session observer's events, feeding the
// joiner; it reports one event per statement.
// Anything that stops the audit (a malformed stream, a bound reached, a tap that throws) is
// reported once through onError, after what was seen is reported: the session must then be
// ended (fail closed), it cannot go on unaudited.

import type { Classifier, StatementInfo } from '../classify/index.js';
import { SessionObserver, type BackendEvent, type DecodeNeeds, type FrontendEvent, type SessionConsumer } from '../../pgwire/observer/index.js';
import { StatementJoiner, type QuerySummary } from './joiner.js';
import type { StatementEvent } from './statement-event.js';

export interface SessionAuditOptions {
  readonly classifier: Classifier;
  readonly onStatement: (event: StatementEvent) => void;
  /** The audit of this session stopped (malformed stream or too much unanswered). */
  readonly onError?: (reason: string) => void;
  readonly logParameters?: boolean;
  /** Only statements this accepts become events (for example isAudited with the server's classes). */
  readonly include?: (info: StatementInfo) => boolean;
  readonly maxStatementBytes?: number;
  readonly maxParameterBytes?: number;
  /** See JoinerOptions. */
  readonly maxPending?: number;
  readonly maxPreparedBytes?: number;
  readonly maxTextBytes?: number;
  readonly now?: () => number;
}

/** The statement audit as a consumer of the session observer: events into the joiner. */
export class StatementAuditConsumer implements SessionConsumer {
  readonly decode: DecodeNeeds;
  private readonly joiner: StatementJoiner;
  private stopped: string | null = null;

  constructor(private readonly options: SessionAuditOptions) {
    this.joiner = new StatementJoiner({
      classifier: options.classifier,
      onStatement: options.onStatement,
      ...(options.logParameters !== undefined ? { logParameters: options.logParameters } : {}),
      ...(options.include !== undefined ? { include: options.include } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
      ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
      ...(options.maxPreparedBytes !== undefined ? { maxPreparedBytes: options.maxPreparedBytes } : {}),
      ...(options.maxTextBytes !== undefined ? { maxTextBytes: options.maxTextBytes } : {}),
    });
    this.decode = {
      measureCut: true,
      ...(options.logParameters !== undefined ? { logParameters: options.logParameters } : {}),
      ...(options.maxStatementBytes !== undefined ? { maxStatementBytes: options.maxStatementBytes } : {}),
      ...(options.maxParameterBytes !== undefined ? { maxParameterBytes: options.maxParameterBytes } : {}),
    };
  }

  /** Why the audit of this session stopped, or null. */
  get error(): string | null {
    return this.stopped;
  }

  frontend(e: FrontendEvent): void {
    if (this.stopped !== null) return;
    this.joiner.frontend(e);
    if (this.joiner.error !== null) this.stop(this.joiner.error);
  }

  backend(e: BackendEvent): void {
    if (this.stopped !== null) return;
    this.joiner.backend(e);
    if (this.joiner.error !== null) this.stop(this.joiner.error);
  }

  failed(reason: string): void {
    this.stop(reason);
  }

  /** The last Query records nothing and changes nothing the joiner follows (see StatementJoiner.quietable). */
  quietable(): boolean {
    return this.stopped === null && this.joiner.quietable;
  }

  /** The last Query is recorded from its summary alone (see StatementJoiner.summary). */
  summary(): QuerySummary | null {
    return this.stopped === null ? this.joiner.summary : null;
  }

  summarized(summary: QuerySummary, text: string, at: number, end: number, tag: string | null): void {
    if (this.stopped !== null) return;
    this.joiner.summarized(summary, text, at, end, tag);
  }

  /** The session closed: statements without an answer are reported with outcome 'unknown'. */
  end(): void {
    if (this.stopped !== null) return;
    try {
      this.joiner.end();
    } catch (err) {
      this.stop(`audit tap failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private stop(reason: string): void {
    if (this.stopped !== null) return;
    this.stopped = reason;
    try {
      this.joiner.stop(reason);
    } catch {
      // What was seen could not all be reported; the session is ended all the same.
    }
    this.options.onError?.(reason);
  }
}

/** The statement audit of one session on its own observer (tests, benches, tools). */
export class SessionAudit {
  private readonly consumer: StatementAuditConsumer;
  private readonly observer: SessionObserver;

  constructor(options: SessionAuditOptions) {
    this.consumer = new StatementAuditConsumer(options);
    this.observer = new SessionObserver([this.consumer]);
  }

  /** Why the audit of this session stopped, or null. */
  get error(): string | null {
    return this.consumer.error;
  }

  /** Bytes from the client, before the relay writes them to the server. Never throws. */
  fromClient(chunk: Buffer): void {
    if (this.consumer.error === null) this.observer.fromClient(chunk);
  }

  /** Bytes from the server. Never throws. */
  fromServer(chunk: Buffer): void {
    if (this.consumer.error === null) this.observer.fromServer(chunk);
  }

  /** The session closed: statements without an answer are reported with outcome 'unknown'. */
  end(): void {
    this.observer.end();
  }
}
