// Decodes the server-to-client stream into statement outcomes: CommandComplete (tag and row
// count), ErrorResponse (SQLSTATE and message), ReadyForQuery, COPY starts, and the few protocol
// acknowledgements the joiner needs. DataRow and CopyData are skipped by length and only counted;
// nothing is allocated for them.

import type { BackendEvent, DecoderOptions } from './events.js';
import { cstringEnd, MESSAGE_HEADER, MessageStream, SKIP_RECORD, SKIP_RECORD_BODY, utf8 } from './framer.js';
import { BackendCode } from '../message-types.js';
import { readErrorSummary } from '../parse-backend.js';

const COMMAND_COMPLETE = BackendCode.CommandComplete;
const ERROR = BackendCode.ErrorResponse;
const READY = BackendCode.ReadyForQuery;
const COPY_IN = BackendCode.CopyInResponse;
const COPY_OUT = BackendCode.CopyOutResponse;
const COPY_BOTH = BackendCode.CopyBothResponse;
const EMPTY_QUERY = BackendCode.EmptyQueryResponse;
const PARSE_COMPLETE = BackendCode.ParseComplete;
const CLOSE_COMPLETE = BackendCode.CloseComplete;
const PORTAL_SUSPENDED = BackendCode.PortalSuspended;
const FUNCTION_RESULT = BackendCode.FunctionCallResponse;
const DATA_ROW = BackendCode.DataRow;
const COPY_DATA = BackendCode.CopyData;

/** Enough of an ErrorResponse for its severity, SQLSTATE and message. */
const ERROR_LIMIT = 16 * 1024;
const TAG_LIMIT = 1024;

export class BackendDecoder extends MessageStream {
  private dataRows = 0;
  private copyBytes = 0;
  /** Status byte of the last ReadyForQuery ('I' before any: a fresh session is idle), and how
   * many came: kept even when only boundaries are read, for a pooled session's give-back. */
  readyStatus = 0x49;
  readyCount = 0;

  constructor(private readonly options: DecoderOptions<BackendEvent> & { readonly boundariesOnly?: boolean }) {
    super();
  }

  protected limit(type: number): number {
    if (this.options.boundariesOnly === true) return type === READY ? 1 : 0;
    switch (type) {
      case SKIP_RECORD:
        return this.options.skipRecords === true ? SKIP_RECORD_BODY : 0;
      case COMMAND_COMPLETE:
        return TAG_LIMIT;
      case ERROR:
        return ERROR_LIMIT;
      case READY:
      case COPY_IN:
      case COPY_OUT:
      case COPY_BOTH:
      case EMPTY_QUERY:
      case PARSE_COMPLETE:
      case CLOSE_COMPLETE:
      case PORTAL_SUSPENDED:
      case FUNCTION_RESULT:
        return 1;
      default:
        return 0;
    }
  }

  protected override skipped(type: number, length: number): void {
    if (type === DATA_ROW) this.dataRows++;
    else if (type === COPY_DATA) this.copyBytes += length;
  }

  protected failed(reason: string): void {
    this.options.onError?.(reason);
  }

  protected message(type: number, buf: Buffer, start: number, end: number, length: number): void {
    const emit = this.options.onEvent;
    switch (type) {
      case SKIP_RECORD: {
        // The native relay's record of a run it did not copy: counted as skipped() counts them.
        if (length !== SKIP_RECORD_BODY || end - start !== SKIP_RECORD_BODY) return this.fail(`invalid skip record length ${length}`);
        const code = buf.readInt32BE(start);
        const count = buf.readInt32BE(start + 4);
        const bytes = buf.readInt32BE(start + 8);
        if (code === DATA_ROW) this.dataRows += count;
        else if (code === COPY_DATA) this.copyBytes += bytes - MESSAGE_HEADER * count;
        else this.fail(`invalid skip record code ${code}`);
        return;
      }
      case COMMAND_COMPLETE: {
        const stop = cstringEnd(buf, start, end);
        emit(countedTag(buf, start, stop, this.dataRows, this.copyBytes) ?? commandComplete(utf8(buf, start, stop), this.dataRows, this.copyBytes));
        this.resetCounts();
        return;
      }
      case ERROR:
        emit(errorEvent(buf, start, end));
        this.resetCounts();
        return;
      case READY: {
        const status = end > start ? buf[start]! : 0;
        this.readyStatus = status;
        this.readyCount++;
        if (this.options.boundariesOnly !== true) emit(readyEvent(status));
        this.resetCounts();
        return;
      }
      case COPY_IN:
      case COPY_BOTH: // the client's side of copy-both is read as in copy-in
        emit(COPY_IN_EVENT);
        return;
      case COPY_OUT:
        emit(COPY_OUT_EVENT);
        return;
      case EMPTY_QUERY:
        emit(EMPTY_QUERY_EVENT);
        return;
      case PARSE_COMPLETE:
        emit(PARSE_COMPLETE_EVENT);
        return;
      case CLOSE_COMPLETE:
        emit(CLOSE_COMPLETE_EVENT);
        return;
      case PORTAL_SUSPENDED:
        emit({ type: 'portalSuspended', dataRows: this.dataRows });
        this.resetCounts();
        return;
      case FUNCTION_RESULT:
        emit(FUNCTION_RESULT_EVENT);
        return;
    }
  }

  private resetCounts(): void {
    this.dataRows = 0;
    this.copyBytes = 0;
  }
}

const COPY_IN_EVENT: BackendEvent = Object.freeze({ type: 'copyIn' });
const COPY_OUT_EVENT: BackendEvent = Object.freeze({ type: 'copyOut' });
const EMPTY_QUERY_EVENT: BackendEvent = Object.freeze({ type: 'emptyQuery' });
const PARSE_COMPLETE_EVENT: BackendEvent = Object.freeze({ type: 'parseComplete' });
const CLOSE_COMPLETE_EVENT: BackendEvent = Object.freeze({ type: 'closeComplete' });
const FUNCTION_RESULT_EVENT: BackendEvent = Object.freeze({ type: 'functionResult' });
const READY_EVENTS = new Map<number, BackendEvent>();

function readyEvent(status: number): BackendEvent {
  let event = READY_EVENTS.get(status);
  if (event === undefined) {
    event = Object.freeze({ type: 'ready', status: status === 0 ? '?' : String.fromCharCode(status) });
    if (READY_EVENTS.size < 256) READY_EVENTS.set(status, event);
  }
  return event;
}

/** Tags that end in a row count: "SELECT 5", "INSERT 0 5", "UPDATE 5", "COPY 5", "MERGE 5". */
const COUNTED = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY', 'FETCH', 'MOVE']);

/** The row count a CommandComplete tag ends with, if it is one that counts rows. */
export function rowCount(tag: string): number | undefined {
  return splitTag(tag).rows;
}

/** A CommandComplete tag's command, and its row count when the command counts rows. */
export function splitTag(tag: string): { command: string; rows?: number } {
  const space = tag.lastIndexOf(' ');
  if (space < 0) return { command: tag };
  let rows = 0;
  for (let i = space + 1; i < tag.length; i++) {
    const d = tag.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return { command: tag };
    rows = rows * 10 + d;
  }
  if (space === tag.length - 1) return { command: tag };
  let command = tag.slice(0, space);
  if (command === 'INSERT 0' || command.startsWith('INSERT ')) command = 'INSERT'; // INSERT oid rows
  return COUNTED.has(command) ? { command, rows } : { command: tag };
}

/** The counted commands and their bytes, for countedTag (INSERT apart: its tag has an oid too). */
const COUNTED_NAMES: readonly string[] = [...COUNTED].filter((c) => c !== 'INSERT');
const COUNTED_BYTES: readonly Buffer[] = COUNTED_NAMES.map((c) => Buffer.from(c, 'latin1'));
const INSERT_PREFIX = Buffer.from('INSERT ', 'latin1');

/**
 * The event of the tag at buf[start, stop) when it is a counted command and its row count (what
 * splitTag makes of it), read from the bytes without decoding the tag; null for any other tag.
 * A space byte is a space character in UTF-8 whatever surrounds it, and the command is compared
 * as ASCII bytes, so the result is the same as the decoded tag's.
 */
function countedTag(buf: Buffer, start: number, stop: number, dataRows: number, copyBytes: number): BackendEvent | null {
  let space = stop - 1;
  while (space >= start && buf[space]! >= 0x30 && buf[space]! <= 0x39) space--;
  if (space < start || space === stop - 1 || buf[space] !== 0x20) return null;
  let command: string | undefined;
  const length = space - start;
  if (length >= INSERT_PREFIX.length && startsWith(buf, start, INSERT_PREFIX)) command = 'INSERT';
  else {
    const first = buf[start];
    for (let k = 0; k < COUNTED_BYTES.length; k++) {
      const bytes = COUNTED_BYTES[k]!;
      if (bytes.length === length && bytes[0] === first && startsWith(buf, start, bytes)) {
        command = COUNTED_NAMES[k];
        break;
      }
    }
  }
  if (command === undefined) return null;
  let rows = 0;
  for (let i = space + 1; i < stop; i++) rows = rows * 10 + (buf[i]! - 0x30);
  return { type: 'commandComplete', tag: command, rows, dataRows, copyBytes };
}

function startsWith(buf: Buffer, at: number, prefix: Buffer): boolean {
  for (let k = 0; k < prefix.length; k++) if (buf[at + k] !== prefix[k]) return false;
  return true;
}

function commandComplete(tag: string, dataRows: number, copyBytes: number): BackendEvent {
  const { command, rows } = splitTag(tag);
  return rows === undefined
    ? { type: 'commandComplete', tag: command, dataRows, copyBytes }
    : { type: 'commandComplete', tag: command, rows, dataRows, copyBytes };
}

function errorEvent(buf: Buffer, start: number, end: number): BackendEvent {
  const { severity, sqlstate, message } = readErrorSummary(buf, start, end);
  return { type: 'error', severity, sqlstate, message };
}
