// The statement events of one segment (up to ReadyForQuery): built and redacted as the joiner
// pairs statements with outcomes, held so a failed implicit commit at Sync can still fail the
// segment's last statement, then handed to the consumer in order.
import type { Classifier, StatementInfo } from '../classify/index.js';
import type { ParamValue } from '../../pgwire/observer/index.js';
import { statementEvent, type KeptText, type MutableEvent, type Protocol, type StatementEvent, type StatementResult } from './statement-event.js';

export interface SegmentEventsOptions {
  readonly classifier: Classifier;
  /** Receives each statement once; must not throw. */
  readonly onStatement: (event: StatementEvent) => void;
  /** Put bind/function-call values in events. */
  readonly logParameters?: boolean;
  /** Only statements this accepts become events (default: all). */
  readonly include?: (info: StatementInfo) => boolean;
  /** Milliseconds clock. */
  readonly now: () => number;
}

/** Events held for a segment's ReadyForQuery at most. */
const MAX_HELD = 1024;

export class SegmentEvents {
  /** Events of the current segment, emitted at ReadyForQuery. */
  private held: MutableEvent[] = [];
  private spare: MutableEvent[] = [];
  /** The segment's last statement, null when it was filtered out (or none yet). */
  private last: MutableEvent | null = null;

  constructor(private readonly options: SegmentEventsOptions) {}

  /** `end`: the clock's reading at the answer, when the caller has it (else read here). */
  record(
    info: StatementInfo,
    start: number,
    protocol: Protocol,
    text: KeptText,
    params: readonly ParamValue[] | undefined,
    result: StatementResult,
    end?: number,
  ): void {
    if (this.options.include !== undefined && !this.options.include(info)) {
      this.last = null;
      return;
    }
    const failure = result.failure;
    const event = statementEvent(
      info,
      protocol,
      // To the microsecond, as PostgreSQL logs durations: a clock's difference has more digits
      // than it means, and costs the record that many bytes.
      Math.max(0, Math.round(((end ?? this.options.now()) - start) * 1000) / 1000),
      text,
      this.options.logParameters && params !== undefined ? this.redactParams(info, params) : undefined,
      result,
      failure ? this.redactMessage(failure.message) : undefined,
    );
    if (this.held.length >= MAX_HELD) this.flush(); // a long segment: stop waiting for its end
    this.held.push(event);
    this.last = event;
  }

  /** An error with nothing left to answer: the segment's last statement failed after all. */
  failLast(failure: { sqlstate: string; message: string }): void {
    const last = this.last;
    if (last !== null && last.outcome === 'success') {
      last.outcome = 'failure';
      last.sqlstate = failure.sqlstate;
      last.errorMessage = this.redactMessage(failure.message);
    }
  }

  /** Hands the held events to the consumer, in order. */
  flush(): void {
    this.last = null;
    const events = this.held;
    if (events.length === 0) return;
    this.held = this.spare;
    this.spare = events;
    for (const event of events) this.options.onStatement(event);
    while (events.length > 0) events.pop(); // not `length = 0`: a runtime call, ten times the cost
  }

  private redactParams(info: StatementInfo, params: readonly ParamValue[]): readonly ParamValue[] {
    const classifier = this.options.classifier;
    return params.map((v, i) => (v !== null && (info.redactParams.includes(i + 1) || classifier.redactsValue(v)) ? '<redacted>' : v));
  }

  /** Error messages can quote values (invalid input syntax for ...: "value"). */
  private redactMessage(message: string): string {
    return this.options.classifier.redactsValue(message) ? '<redacted>' : message;
  }
}
