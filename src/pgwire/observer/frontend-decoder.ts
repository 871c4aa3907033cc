// Decodes the client-to-server stream after authentication into statement-level events: simple
// Query, Parse/Bind/Execute/Close/Sync, FunctionCall, CopyDone/CopyFail and the volume of COPY
// data. Bind values are decoded only when parameters are logged; everything else (Describe,
// Flush, CopyData) is skipped by length. A Query or Parse text longer than the tap keeps is cut,
// and the whole text is hashed as it streams by (never held): the event says how long it was.

import { createHash, type Hash } from 'node:crypto';
import type { FrontendEvent, ParamValue, DecoderOptions } from './events.js';
import {
  cstringEnd,
  KEY_RECORD_BODY,
  KEY_RECORD_CODE,
  MESSAGE_HEADER,
  MessageStream,
  SKIP_RECORD,
  SKIP_RECORD_BODY,
  UNNAMED_RECORD_CODE,
  utf8,
} from './framer.js';
import { FrontendCode } from '../message-types.js';

export interface FrontendDecoderOptions extends DecoderOptions<FrontendEvent> {
  /** Decode Bind and FunctionCall argument values (default false). */
  readonly logParameters?: boolean;
  /** Query and Parse texts are cut after this many bytes (default 1 MiB). */
  readonly maxStatementBytes?: number;
  /** A parameter value longer than this (bytes) is logged as "<long field suppressed>" (default 4096). */
  readonly maxParameterBytes?: number;
  /** Measure (length, SHA-256) the whole text of a Query or Parse that is cut (default false). */
  readonly measureCut?: boolean;
  /** Decode nothing but Terminate: every other message is skipped by length (default false). */
  readonly boundariesOnly?: boolean;
  /** With skipRecords: the shape key of the native relay's key record (a copy), which comes just
   * before the Query it keys. */
  readonly onShapeKey?: (key: Buffer) => void;
}

const Q = FrontendCode.Query;
const P = FrontendCode.Parse;
const B = FrontendCode.Bind;
const E = FrontendCode.Execute;
const F = FrontendCode.FunctionCall;
const C = FrontendCode.Close;
const S = FrontendCode.Sync;
const X = FrontendCode.Terminate;
const COPY_DATA = FrontendCode.CopyData;
const COPY_DONE = FrontendCode.CopyDone;
const COPY_FAIL = FrontendCode.CopyFail;
const FLUSH = FrontendCode.Flush;
/** Enough for the portal and statement names of a Bind when values are not logged. */
const NAMES_ONLY = 1024;
const MAX_PARAMS = 65535;
export const LONG_FIELD = '<long field suppressed>';

export class FrontendDecoder extends MessageStream {
  private readonly logParameters: boolean;
  private readonly maxStatement: number;
  private readonly maxParameter: number;
  private readonly boundariesOnly: boolean;
  private copyBytes = 0;
  /** A cut Query or Parse whose rest is being hashed (emitted at its end). */
  private streamed: { name: string | null; text: string; hash: Hash; length: number; ended: boolean } | null = null;

  constructor(private readonly options: FrontendDecoderOptions) {
    super();
    this.logParameters = options.logParameters ?? false;
    this.maxStatement = options.maxStatementBytes ?? 1024 * 1024;
    this.maxParameter = options.maxParameterBytes ?? 4096;
    this.boundariesOnly = options.boundariesOnly ?? false;
  }

  protected limit(type: number): number {
    if (this.boundariesOnly) return type === X ? 1 : 0;
    switch (type) {
      case SKIP_RECORD:
        return this.options.skipRecords === true ? KEY_RECORD_BODY : 0;
      case Q:
      case P:
        return this.maxStatement + 1024;
      case B:
      case F:
        return this.logParameters ? this.maxStatement + 1024 : NAMES_ONLY;
      case E:
      case C:
        return NAMES_ONLY;
      case S:
      case X:
      case COPY_DONE:
      case COPY_FAIL:
        return 1;
      default:
        return 0;
    }
  }

  protected override skipped(type: number, length: number): void {
    if (this.boundariesOnly) return;
    if (type === COPY_DATA) {
      this.copyBytes += length;
      return;
    }
    if (type === FLUSH) return;
    this.flushCopy();
    this.options.onEvent({ type: 'other', code: type });
  }

  protected override tail(buf: Buffer, start: number, end: number): void {
    const s = this.streamed;
    if (s === null || s.ended) return;
    const nul = buf.indexOf(0, start);
    const stop = nul < 0 || nul >= end ? end : nul;
    if (stop > start) s.hash.update(buf.subarray(start, stop));
    s.length += stop - start;
    if (stop < end) s.ended = true;
  }

  protected override tailEnd(): void {
    const s = this.streamed;
    if (s === null) return;
    this.streamed = null;
    const full = { length: s.length, sha256: s.hash.digest('hex') };
    if (s.name === null) this.options.onEvent({ type: 'query', text: s.text, truncated: true, full });
    else this.options.onEvent({ type: 'parse', name: s.name, text: s.text, truncated: true, full });
  }

  protected override endOfChunk(): void {
    this.flushCopy();
  }

  protected failed(reason: string): void {
    this.options.onError?.(reason);
  }

  protected message(type: number, buf: Buffer, start: number, end: number, length: number): void {
    if (type === SKIP_RECORD && length === 4) {
      if (end - start !== 4 || buf.readInt32BE(start) !== UNNAMED_RECORD_CODE) return this.fail('invalid unnamed record');
      this.flushCopy();
      this.options.onEvent(UNNAMED_REPLACED);
      return;
    }
    if (type === SKIP_RECORD && length === KEY_RECORD_BODY) {
      if (end - start !== KEY_RECORD_BODY || buf.readInt32BE(start) !== KEY_RECORD_CODE) return this.fail(`invalid key record`);
      this.flushCopy();
      this.options.onShapeKey?.(Buffer.from(buf.subarray(start + 4, end)));
      return;
    }
    if (type === SKIP_RECORD) {
      // The native relay's record of a run of CopyData it did not copy: summed as skipped() does,
      // so the copyData events come out as they would from the messages themselves.
      if (length !== SKIP_RECORD_BODY || end - start !== SKIP_RECORD_BODY) return this.fail(`invalid skip record length ${length}`);
      const code = buf.readInt32BE(start);
      if (code !== COPY_DATA) return this.fail(`invalid skip record code ${code}`);
      this.copyBytes += buf.readInt32BE(start + 8) - MESSAGE_HEADER * buf.readInt32BE(start + 4);
      return;
    }
    this.flushCopy();
    const emit = this.options.onEvent;
    const cut = length > end - start;
    switch (type) {
      case Q:
        this.statement(null, buf, start, end, cut);
        return;
      case P: {
        const nameEnd = cstringEnd(buf, start, end);
        this.statement(utf8(buf, start, nameEnd), buf, nameEnd + 1, end, cut);
        return;
      }
      case B: {
        const portalEnd = cstringEnd(buf, start, end);
        const statementEnd = cstringEnd(buf, portalEnd + 1, end);
        const portal = utf8(buf, start, portalEnd);
        const statement = utf8(buf, portalEnd + 1, statementEnd);
        if (!this.logParameters) emit({ type: 'bind', portal, statement });
        else emit({ type: 'bind', portal, statement, params: this.values(buf, statementEnd + 1, end, cut) });
        return;
      }
      case E: {
        const portalEnd = cstringEnd(buf, start, end);
        const maxRows = portalEnd + 5 <= end ? buf.readInt32BE(portalEnd + 1) : 0;
        emit({ type: 'execute', portal: utf8(buf, start, portalEnd), maxRows });
        return;
      }
      case F: {
        const oid = end - start >= 4 ? buf.readUInt32BE(start) : 0;
        if (!this.logParameters) emit({ type: 'functionCall', oid });
        else emit({ type: 'functionCall', oid, args: this.values(buf, start + 4, end, cut) });
        return;
      }
      case C: {
        const nameEnd = cstringEnd(buf, start + 1, end);
        emit({ type: 'close', target: end > start && buf[start] === P ? 'portal' : 'statement', name: utf8(buf, start + 1, nameEnd) });
        return;
      }
      case S:
        emit(SYNC);
        return;
      case X:
        emit(TERMINATE);
        return;
      case COPY_DONE:
        emit(COPY_DONE_EVENT);
        return;
      case COPY_FAIL:
        emit(COPY_FAIL_EVENT);
        return;
    }
  }

  /**
   * A Query (name null) or Parse text at buf[at, end). Kept whole up to maxStatementBytes; a
   * longer one is cut, and its whole length and SHA-256 go with the event: at once when the whole
   * text is here, else once the rest of the message has streamed by (tail).
   */
  private statement(name: string | null, buf: Buffer, at: number, end: number, cut: boolean): void {
    const stop = cstringEnd(buf, at, end);
    const terminated = stop < end;
    if (terminated && stop - at <= this.maxStatement) {
      const text = utf8(buf, at, stop);
      if (name === null) this.options.onEvent({ type: 'query', text, truncated: false });
      else this.options.onEvent({ type: 'parse', name, text, truncated: false });
      return;
    }
    const text = utf8(buf, at, Math.min(stop, at + this.maxStatement));
    if (this.options.measureCut !== true) {
      if (name === null) this.options.onEvent({ type: 'query', text, truncated: true });
      else this.options.onEvent({ type: 'parse', name, text, truncated: true });
      return;
    }
    const hash = createHash('sha256').update(buf.subarray(at, stop));
    if (!terminated && cut) {
      this.streamed = { name, text, hash, length: stop - at, ended: false };
      this.wantTail();
      return;
    }
    const full = { length: stop - at, sha256: hash.digest('hex') };
    if (name === null) this.options.onEvent({ type: 'query', text, truncated: true, full });
    else this.options.onEvent({ type: 'parse', name, text, truncated: true, full });
  }

  private flushCopy(): void {
    if (this.copyBytes === 0) return;
    const bytes = this.copyBytes;
    this.copyBytes = 0;
    this.options.onEvent({ type: 'copyData', bytes });
  }

  /** Format codes, then values (Bind and FunctionCall share the layout). Tolerates a cut body. */
  private values(buf: Buffer, at: number, end: number, cut: boolean): ParamValue[] {
    const out: ParamValue[] = [];
    if (at + 2 > end) return out;
    const formatCount = buf.readUInt16BE(at);
    const formatsAt = at + 2;
    at = formatsAt + 2 * formatCount;
    if (at + 2 > end) return out;
    const count = Math.min(buf.readUInt16BE(at), MAX_PARAMS);
    at += 2;
    for (let k = 0; k < count; k++) {
      if (at + 4 > end) {
        if (cut) out.push(LONG_FIELD);
        break;
      }
      const size = buf.readInt32BE(at);
      at += 4;
      if (size < 0) {
        out.push(null);
        continue;
      }
      if (at + size > end) {
        out.push(LONG_FIELD); // the message was cut: the rest is not here
        break;
      }
      const format = formatCount === 0 ? 0 : formatCount === 1 ? buf.readUInt16BE(formatsAt) : k < formatCount ? buf.readUInt16BE(formatsAt + 2 * k) : 0;
      if (size > this.maxParameter) out.push(LONG_FIELD);
      else out.push(format === 1 ? `\\x${buf.toString('hex', at, at + size)}` : buf.toString('utf8', at, at + size));
      at += size;
    }
    return out;
  }
}

const SYNC: FrontendEvent = Object.freeze({ type: 'sync' });
const UNNAMED_REPLACED: FrontendEvent = Object.freeze({ type: 'unnamedReplaced' });
const TERMINATE: FrontendEvent = Object.freeze({ type: 'terminate' });
const COPY_DONE_EVENT: FrontendEvent = Object.freeze({ type: 'copyDone' });
const COPY_FAIL_EVENT: FrontendEvent = Object.freeze({ type: 'copyFail' });
