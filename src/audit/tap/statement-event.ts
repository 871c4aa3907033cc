// The joiner's output: one executed statement with its outcome.

import type { AuditObject, StatementClass, StatementInfo } from '../classify/index.js';
import type { ParamValue } from './events.js';

export type Protocol = 'simple' | 'extended' | 'function';
export type Outcome = 'success' | 'failure' | 'unknown';

export interface StatementEvent {
  /** The statement text, redacted (StatementInfo.redactedText). */
  readonly text: string;
  readonly class: StatementClass;
  readonly classes: readonly StatementClass[];
  /** The parser's tag; the server's when the parser refused the text. */
  readonly commandTag: string;
  readonly objects: readonly AuditObject[];
  /** Bound values ($1 first), redacted where configured; only when parameters are logged. */
  readonly params?: readonly ParamValue[];
  /** 'unknown': no answer was seen (session ended, or the tap stopped). */
  readonly outcome: Outcome;
  readonly sqlstate?: string;
  readonly errorMessage?: string;
  /** Rows returned or affected, from the command tag (or DataRows before PortalSuspended). */
  readonly rows?: number;
  /** COPY data volume in bytes, either direction. */
  readonly copyBytes?: number;
  /** From the statement reaching the gateway (or the previous statement's end) to its answer. */
  readonly durationMs: number;
  readonly protocol: Protocol;
  /** The text was cut: longer than the tap keeps. */
  readonly truncated?: boolean;
  /** The parser's error, for class UNKNOWN. */
  readonly parseError?: string;
}

export type MutableEvent = { -readonly [K in keyof StatementEvent]: StatementEvent[K] };

/** What the server answered a statement with (the joiner's view). */
export interface StatementResult {
  /** The server's command tag (without the row count). */
  readonly tag?: string;
  readonly rows?: number | undefined;
  readonly copyBytes?: number;
  readonly failure?: { readonly sqlstate: string; readonly message: string };
  /** No answer was seen. */
  readonly unknown?: boolean;
}

/**
 * The event of one statement. `params` are the (redacted) values to log, `errorMessage` the
 * failure's message as it may be logged (redacted); called once per audited statement, so no
 * intermediate objects.
 */
export function statementEvent(
  info: StatementInfo,
  protocol: Protocol,
  durationMs: number,
  truncated: boolean,
  params: readonly ParamValue[] | undefined,
  result: StatementResult,
  errorMessage: string | undefined,
): MutableEvent {
  const failure = result.failure;
  const event: MutableEvent = {
    text: info.redactedText,
    class: info.class,
    classes: info.classes,
    commandTag: info.class === 'UNKNOWN' && result.tag !== undefined ? result.tag : info.commandTag,
    objects: info.objects,
    outcome: result.unknown ? 'unknown' : failure ? 'failure' : 'success',
    durationMs,
    protocol,
  };
  if (params !== undefined) event.params = params;
  if (failure) {
    if (failure.sqlstate !== undefined) event.sqlstate = failure.sqlstate;
    if (errorMessage !== undefined) event.errorMessage = errorMessage;
  }
  if (result.rows !== undefined) event.rows = result.rows;
  if (result.copyBytes !== undefined && result.copyBytes > 0) event.copyBytes = result.copyBytes;
  if (truncated) event.truncated = true;
  if (info.error !== undefined) event.parseError = info.error;
  return event;
}
