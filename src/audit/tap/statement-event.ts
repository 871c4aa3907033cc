// The joiner's output: one executed statement with its outcome.

import { createHash } from 'node:crypto';
import type { AuditObject, StatementClass, StatementInfo } from '../classify/index.js';
import type { FullText, ParamValue } from '../../pgwire/observer/index.js';

/** Bytes of statement text an event keeps by default; a longer text is cut (see `truncated`). */
export const DEFAULT_MAX_TEXT_BYTES = 8 * 1024;

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
  /** The text was cut: longer than an event keeps (or than the tap reads). */
  readonly truncated?: boolean;
  /** With `truncated`: bytes of the whole text as the client sent it (the statement's own text, or
   * the whole Query/Parse string when that was longer than the tap reads). */
  readonly textLength?: number;
  /** With `truncated`: SHA-256 (hex) of those bytes. */
  readonly textSha256?: string;
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
  text: KeptText,
  params: readonly ParamValue[] | undefined,
  result: StatementResult,
  errorMessage: string | undefined,
): MutableEvent {
  const failure = result.failure;
  const event: MutableEvent = {
    text: text.text,
    class: info.class,
    classes: info.classes,
    // The server's tag where the text does not give one (refused by the parser, or run by name after SQL PREPARE).
    commandTag: (info.class === 'UNKNOWN' || info.commandTag === '') && result.tag !== undefined ? result.tag : info.commandTag,
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
  if (text.full !== undefined) {
    event.truncated = true;
    event.textLength = text.full.length;
    event.textSha256 = text.full.sha256;
  }
  if (info.error !== undefined) event.parseError = info.error;
  return event;
}

/** The text an event carries: the redacted text, cut to `maxBytes` with the whole text's measure. */
export interface KeptText {
  readonly text: string;
  /** Set when `text` is cut. */
  readonly full: FullText | undefined;
}

/**
 * The statement's redacted text as an event keeps it. `truncated`/`full`: the tap cut the text
 * (then `full` measures the whole Query/Parse string); else a redacted text over `maxBytes` is cut
 * here and `full` measures the statement's own text.
 */
export function keptText(info: StatementInfo, truncated: boolean, full: FullText | undefined, maxBytes: number): KeptText {
  const text = info.redactedText;
  const long = text.length > maxBytes / 3 && Buffer.byteLength(text) > maxBytes;
  if (!truncated && !long) return { text, full: undefined };
  // A text with redacted parts (a password) is measured as redacted: a hash of the clear text would
  // let anyone who knows the rest of it test guesses of the secret.
  const redacted = text !== info.text;
  return { text: long ? cutUtf8(text, maxBytes) : text, full: redacted ? measure(text) : (full ?? measure(info.text)) };
}

export function measure(text: string): FullText {
  return { length: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') };
}

/** The longest prefix of `text` whose UTF-8 form has at most `maxBytes` bytes (never half a character). */
export function cutUtf8(text: string, maxBytes: number): string {
  let head = text.slice(0, maxBytes);
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1); // half a surrogate pair
  const buf = Buffer.from(head);
  if (buf.length <= maxBytes) return head;
  let end = maxBytes;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // back to the first byte of a character
  return buf.toString('utf8', 0, end);
}
