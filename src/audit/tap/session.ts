// Statement audit of one session: both taps and the joiner. Feed it the bytes the relay forwards
// (client bytes before they are written to the server) and it reports one event per statement.
// Anything that stops the audit (a malformed stream, a bound reached, a tap that throws) is
// reported once through onError, after what was seen is reported: the session must then be
// ended (fail closed), it cannot go on unaudited.

import type { Classifier, StatementInfo } from '../classify/index.js';
import { BackendTap } from './backend-tap.js';
import { FrontendTap } from './frontend-tap.js';
import { StatementJoiner } from './joiner.js';
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

export class SessionAudit {
  private readonly frontendTap: FrontendTap;
  private readonly backendTap: BackendTap;
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
    const onError = (reason: string) => this.stop(reason);
    this.frontendTap = new FrontendTap({
      onEvent: (e) => {
        this.joiner.frontend(e);
        if (this.joiner.error !== null) this.stop(this.joiner.error);
      },
      onError,
      measureCut: true,
      ...(options.logParameters !== undefined ? { logParameters: options.logParameters } : {}),
      ...(options.maxStatementBytes !== undefined ? { maxStatementBytes: options.maxStatementBytes } : {}),
      ...(options.maxParameterBytes !== undefined ? { maxParameterBytes: options.maxParameterBytes } : {}),
    });
    this.backendTap = new BackendTap({
      onEvent: (e) => {
        this.joiner.backend(e);
        if (this.joiner.error !== null) this.stop(this.joiner.error);
      },
      onError,
    });
  }

  /** Why the audit of this session stopped, or null. */
  get error(): string | null {
    return this.stopped;
  }

  /** Bytes from the client, before the relay writes them to the server. Never throws. */
  fromClient(chunk: Buffer): void {
    if (this.stopped === null) this.frontendTap.push(chunk);
  }

  /** Bytes from the server. Never throws. */
  fromServer(chunk: Buffer): void {
    if (this.stopped === null) this.backendTap.push(chunk);
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
