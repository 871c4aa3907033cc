// Decodes the client-to-server stream after authentication into statement-level events: simple
// Query, Parse/Bind/Execute/Close/Sync, FunctionCall, and the volume of COPY data. Bind values
// are decoded only when parameters are logged; everything else (Describe, Flush, CopyData,
// CopyDone, CopyFail) is skipped by length.

import type { FrontendEvent, ParamValue, TapOptions } from './events.js';
import { cstringEnd, MessageStream, utf8 } from './message-stream.js';

export interface FrontendTapOptions extends TapOptions<FrontendEvent> {
  /** Decode Bind and FunctionCall argument values (default false). */
  readonly logParameters?: boolean;
  /** Query and Parse texts are cut after this many bytes (default 1 MiB). */
  readonly maxStatementBytes?: number;
  /** A parameter value longer than this (bytes) is logged as "<long field suppressed>" (default 4096). */
  readonly maxParameterBytes?: number;
}

const Q = 0x51;
const P = 0x50;
const B = 0x42;
const E = 0x45;
const F = 0x46;
const C = 0x43;
const S = 0x53;
const X = 0x58;
const COPY_DATA = 0x64;
/** Enough for the portal and statement names of a Bind when values are not logged. */
const NAMES_ONLY = 1024;
const MAX_PARAMS = 65535;
export const LONG_FIELD = '<long field suppressed>';

export class FrontendTap extends MessageStream {
  private readonly logParameters: boolean;
  private readonly maxStatement: number;
  private readonly maxParameter: number;
  private copyBytes = 0;

  constructor(private readonly options: FrontendTapOptions) {
    super();
    this.logParameters = options.logParameters ?? false;
    this.maxStatement = options.maxStatementBytes ?? 1024 * 1024;
    this.maxParameter = options.maxParameterBytes ?? 4096;
  }

  protected limit(type: number): number {
    switch (type) {
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
        return 1;
      default:
        return 0;
    }
  }

  protected override skipped(type: number, length: number): void {
    if (type === COPY_DATA) this.copyBytes += length;
  }

  protected override endOfChunk(): void {
    this.flushCopy();
  }

  protected failed(reason: string): void {
    this.options.onError?.(reason);
  }

  protected message(type: number, buf: Buffer, start: number, end: number, length: number): void {
    this.flushCopy();
    const emit = this.options.onEvent;
    const cut = length > end - start;
    switch (type) {
      case Q: {
        const text = this.statementText(buf, start, end);
        emit({ type: 'query', text: text.value, truncated: text.truncated || cut });
        return;
      }
      case P: {
        const nameEnd = cstringEnd(buf, start, end);
        const text = this.statementText(buf, nameEnd + 1, end);
        emit({ type: 'parse', name: utf8(buf, start, nameEnd), text: text.value, truncated: text.truncated || cut });
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
        emit({ type: 'close', target: buf[start] === P ? 'portal' : 'statement', name: utf8(buf, start + 1, nameEnd) });
        return;
      }
      case S:
        emit(SYNC);
        return;
      case X:
        emit(TERMINATE);
        return;
    }
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

  /** A statement text (NUL-terminated) cut to the byte limit. */
  private statementText(buf: Buffer, at: number, end: number): { value: string; truncated: boolean } {
    const stop = cstringEnd(buf, at, end);
    const unterminated = stop === end;
    if (stop - at <= this.maxStatement) return { value: utf8(buf, at, stop), truncated: unterminated };
    return { value: utf8(buf, at, at + this.maxStatement), truncated: true };
  }
}

const SYNC: FrontendEvent = Object.freeze({ type: 'sync' });
const TERMINATE: FrontendEvent = Object.freeze({ type: 'terminate' });
