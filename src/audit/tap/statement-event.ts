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

export function statementEvent(
  info: StatementInfo,
  at: {
    protocol: Protocol;
    durationMs: number;
    truncated: boolean;
    params?: readonly ParamValue[];
    serverTag: string | undefined;
    rows: number | undefined;
    copyBytes: number | undefined;
    outcome: Outcome;
    sqlstate?: string;
    errorMessage?: string;
  },
): MutableEvent {
  const event: MutableEvent = {
    text: info.redactedText,
    class: info.class,
    classes: info.classes,
    commandTag: info.class === 'UNKNOWN' && at.serverTag !== undefined ? at.serverTag : info.commandTag,
    objects: info.objects,
    outcome: at.outcome,
    durationMs: at.durationMs,
    protocol: at.protocol,
  };
  if (at.params !== undefined) event.params = at.params;
  if (at.sqlstate !== undefined) event.sqlstate = at.sqlstate;
  if (at.errorMessage !== undefined) event.errorMessage = at.errorMessage;
  if (at.rows !== undefined) event.rows = at.rows;
  if (at.copyBytes !== undefined && at.copyBytes > 0) event.copyBytes = at.copyBytes;
  if (at.truncated) event.truncated = true;
  if (info.error !== undefined) event.parseError = info.error;
  return event;
}
