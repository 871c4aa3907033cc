// A jsonlog line longer than one read (pgaudit-scan.ts reads 4 MiB at a time): read to its end
// in chunks, never held whole. The line's JSON envelope is kept; in its "message", pgAudit's CSV
// fields are decoded as they stream by: the statement keeps its first `keepBytes` with the length
// and SHA-256 of all of it, the parameter its first `keepBytes`. The result is a short line of the
// same shape (the same envelope, the message with the cut fields), which the ordinary parser reads.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import type { FullText } from '../pgwire/observer/index.js';

export interface LongLine {
  /** The short line to parse, or null when the line is not a pgAudit line (or not readable so). */
  readonly line: Buffer | null;
  /** The whole statement's measure (bytes as pgAudit logged it, before any redaction). */
  readonly full: FullText | null;
  /** Offset after the line's "\n". */
  readonly next: number;
}

const MESSAGE_KEY = Buffer.from('"message":"');
const AUDIT = Buffer.from('AUDIT: ');
/** The envelope before and after the message is small: more than this and the line is not jsonlog's. */
const MAX_ENVELOPE = 64 * 1024;
const MAX_SMALL_FIELD = 4096;

/**
 * Reads the line starting at `from` to its "\n" (null when the file ends before it: the line is
 * still being written). `chunkBytes`: bytes per read.
 */
export function readLongLine(file: string, from: number, chunkBytes: number, keepBytes: number): LongLine | null {
  const fd = openSync(file, 'r');
  try {
    const decoder = new LineDecoder(keepBytes);
    const buf = Buffer.allocUnsafe(chunkBytes);
    for (let at = from; ; ) {
      const n = readSync(fd, buf, 0, chunkBytes, at);
      if (n === 0) return null;
      const nl = buf.subarray(0, n).indexOf(0x0a);
      const end = nl < 0 ? n : nl;
      decoder.push(buf, end);
      at += end;
      if (nl >= 0) return { ...decoder.finish(), next: at + 1 };
    }
  } finally {
    closeSync(fd);
  }
}

type Phase = 'envelope' | 'message' | 'after';

class LineDecoder {
  private phase: Phase = 'envelope';
  private failed = false;
  private readonly before: Buffer[] = [];
  private beforeBytes = 0;
  private readonly after: Buffer[] = [];
  private afterBytes = 0;
  /** JSON string decoding of the message. */
  private escape: 0 | 1 | 2 = 0; // 0 none, 1 after "\", 2 in \uXXXX
  private hex = '';
  /** The message bytes decoded so far, before the CSV fields start ("AUDIT: "). */
  private intro = 0;
  /** CSV state. */
  private field = 0;
  private quoted = false;
  private fieldStart = true;
  private quotePending = false;
  private readonly small: number[][] = [];
  private readonly statementHead: number[] = [];
  private readonly parameterHead: number[] = [];
  private readonly hash: Hash = createHash('sha256');
  private statementLength = 0;
  private pendingHash: number[] = [];

  constructor(private readonly keepBytes: number) {}

  push(buf: Buffer, end: number): void {
    let i = 0;
    while (i < end && !this.failed) {
      if (this.phase === 'envelope') i = this.envelope(buf, i, end);
      else if (this.phase === 'message') i = this.message(buf, i, end);
      else {
        this.afterBytes += end - i;
        if (this.afterBytes > MAX_ENVELOPE) this.failed = true;
        else this.after.push(Buffer.from(buf.subarray(i, end)));
        i = end;
      }
    }
  }

  finish(): { line: Buffer | null; full: FullText | null } {
    this.flushHash();
    if (this.failed || this.phase !== 'after' || this.field < 7) return { line: null, full: null };
    const fields = this.small.map((f) => csv(Buffer.from(f).toString('utf8')));
    fields.push(csv(Buffer.from(this.statementHead).toString('utf8')));
    if (this.field >= 8) fields.push(csv(Buffer.from(this.parameterHead).toString('utf8')));
    const message = JSON.stringify(`AUDIT: ${fields.join(',')}`);
    const line = Buffer.concat([...this.before, Buffer.from(message), ...this.after]);
    return { line, full: { length: this.statementLength, sha256: this.hash.digest('hex') } };
  }

  private envelope(buf: Buffer, i: number, end: number): number {
    const slice = buf.subarray(i, end);
    this.before.push(Buffer.from(slice));
    this.beforeBytes += slice.length;
    const joined = Buffer.concat(this.before);
    const key = joined.indexOf(MESSAGE_KEY);
    if (key < 0) {
      if (this.beforeBytes > MAX_ENVELOPE) this.failed = true;
      else {
        this.before.length = 0;
        this.before.push(joined);
      }
      return end;
    }
    // Keep the envelope up to `"message":`; the string itself is decoded from its first byte.
    const valueAt = key + MESSAGE_KEY.length;
    this.before.length = 0;
    this.before.push(joined.subarray(0, valueAt - 1));
    this.phase = 'message';
    return end - (joined.length - valueAt);
  }

  /** Decodes the JSON string until its closing quote. */
  private message(buf: Buffer, i: number, end: number): number {
    for (; i < end; i++) {
      const b = buf[i]!;
      if (this.escape === 1) {
        this.escape = 0;
        switch (b) {
          case 0x75: // u
            this.escape = 2;
            this.hex = '';
            continue;
          case 0x6e:
            this.byte(0x0a);
            continue;
          case 0x72:
            this.byte(0x0d);
            continue;
          case 0x74:
            this.byte(0x09);
            continue;
          case 0x62:
            this.byte(0x08);
            continue;
          case 0x66:
            this.byte(0x0c);
            continue;
          default:
            this.byte(b); // \" \\ \/
            continue;
        }
      }
      if (this.escape === 2) {
        this.hex += String.fromCharCode(b);
        if (this.hex.length === 4) {
          this.escape = 0;
          for (const c of Buffer.from(String.fromCharCode(parseInt(this.hex, 16)))) this.byte(c);
        }
        continue;
      }
      if (b === 0x5c) {
        this.escape = 1;
        continue;
      }
      if (b === 0x22) {
        this.endField();
        this.phase = 'after';
        return i + 1;
      }
      this.byte(b);
    }
    return end;
  }

  /** One decoded byte of the message. */
  private byte(b: number): void {
    if (this.intro < AUDIT.length) {
      if (b !== AUDIT[this.intro]) this.failed = true;
      this.intro++;
      return;
    }
    if (this.fieldStart) {
      this.fieldStart = false;
      if (b === 0x22) {
        this.quoted = true;
        return;
      }
    }
    if (this.quoted) {
      if (this.quotePending) {
        this.quotePending = false;
        if (b === 0x22) {
          this.keep(0x22);
          return;
        }
        this.quoted = false; // the closing quote: this byte is the separator
      } else if (b === 0x22) {
        this.quotePending = true;
        return;
      } else {
        this.keep(b);
        return;
      }
    }
    if (b === 0x2c && this.field < 8) {
      this.endField();
      return;
    }
    this.keep(b);
  }

  private endField(): void {
    this.quotePending = false;
    this.quoted = false;
    this.fieldStart = true;
    if (this.field < 7 && this.small.length <= this.field) this.small.push([]);
    this.field++;
  }

  private keep(b: number): void {
    if (this.field < 7) {
      while (this.small.length <= this.field) this.small.push([]);
      const f = this.small[this.field]!;
      if (f.length < MAX_SMALL_FIELD) f.push(b);
    } else if (this.field === 7) {
      this.statementLength++;
      if (this.statementHead.length < this.keepBytes) this.statementHead.push(b);
      this.pendingHash.push(b);
      if (this.pendingHash.length >= 64 * 1024) this.flushHash();
    } else if (this.parameterHead.length < this.keepBytes) this.parameterHead.push(b);
  }

  private flushHash(): void {
    if (this.pendingHash.length === 0) return;
    this.hash.update(Buffer.from(this.pendingHash));
    this.pendingHash = [];
  }
}

/** A CSV field as pgAudit writes it: quoted when it holds a comma, quote or line break. */
function csv(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
