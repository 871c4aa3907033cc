// The relay's framer: follows the typed messages of one direction of a PostgreSQL session
// (1-byte type, int32 length including itself, body) as chunks arrive, without holding the
// stream. Messages the subclass wants are handed over whole (a zero-copy view when the body lies
// inside one chunk), cut to a per-type limit; all others are skipped by length without being read
// or copied. It also knows where the stream is (at a message boundary or not, the last type), which
// the relay needs to end a session cleanly. Garbage never throws: the first framing error stops
// the stream for good and is reported once.

/** First allocation for a body that spans chunks; doubled up to the body's limit. */
const INITIAL_COLLECT = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/** Messages framed by every framer of the process: read by the unit test that counts passes. */
export const framingCounters = { messages: 0 };

/** Type byte of the native relay's skip-run record: `0x00, Int32 16, Int32 code, Int32 count,
 * Int32 bytes` stands for `count` DataRow ('D') or CopyData ('d') messages of `bytes` bytes in
 * all (headers included) that the addon framed and did not copy (gateway/native/addon.ts). */
export const SKIP_RECORD = 0x00;
/** Body length of a skip-run record (code, count, bytes). */
export const SKIP_RECORD_BODY = 12;
/** Code of the native relay's key record `0x00, Int32 24, Int32 'k', 16-byte shape key`, which
 * comes just before a simple Query the addon could relay unobserved next time (its shape key,
 * for `SessionObserver`'s onQuiet). */
export const KEY_RECORD_CODE = 0x6b;
/** Body length of a key record (code, key). */
export const KEY_RECORD_BODY = 20;
/** Code of the native relay's unnamed record `0x00, Int32 8, Int32 'u'`: messages it relayed
 * unobserved replaced the unnamed statement and portal. */
export const UNNAMED_RECORD_CODE = 0x75;
/** Header bytes of each skipped message (type and length): not part of a body length. */
export const MESSAGE_HEADER = 5;

export abstract class MessageStream {
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private type = 0;
  /** Full body length of the message in progress. */
  private bodyLength = 0;
  /** Body bytes still to skip (after the collected prefix, or all of a skipped message). */
  private skipping = 0;
  /** The wanted prefix of the message in progress is still to come (collectTarget bytes). */
  private collecting = false;
  /** Collection of a wanted body that spans chunks. */
  private collect: Buffer | null = null;
  private collected = 0;
  private collectTarget = 0;
  private failure: string | null = null;
  /** The skipped rest of the message in progress goes to tail() (see wantTail). */
  private streaming = false;

  /** Type byte of the last message whose header was read (0: none yet). */
  lastType = 0;

  /** Why the stream stopped, or null while it runs. */
  get error(): string | null {
    return this.failure;
  }

  /** The stream is between two messages (false once it failed: where it is is unknown). */
  get atBoundary(): boolean {
    return this.failure === null && this.headerFill === 0 && this.skipping === 0 && !this.collecting;
  }

  /** Feeds the next bytes of the stream. Never throws. */
  push(chunk: Buffer): void {
    if (this.failure !== null) return;
    try {
      this.consume(chunk);
      this.endOfChunk();
    } catch (err) {
      this.fail(`audit tap failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /**
   * A message framed by the caller instead of push() (the transaction-mode relay frames both
   * streams itself): its header. Its `length - 4` body bytes follow through pushBody(), in
   * order, before the next header. Not counted in framingCounters: the caller framed it and counts
   * it. Never throws.
   */
  pushHeader(type: number, length: number): void {
    if (this.failure !== null) return;
    try {
      this.begin(type, length);
    } catch (err) {
      this.fail(`audit tap failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Body bytes buf[start, end) of the message given to pushHeader() (bytes past its end are
   * ignored). Never throws. */
  pushBody(buf: Buffer, start: number, end: number): void {
    if (this.failure !== null) return;
    try {
      let i = start;
      while (i < end && this.failure === null && (this.skipping > 0 || this.collecting)) i = this.body(buf, i, end);
    } catch (err) {
      this.fail(`audit tap failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The caller's chunk ended (see pushHeader): what is summed per chunk (the client's COPY
   * bytes) is handed over, as push() does after each chunk. Never throws. */
  pushEnd(): void {
    if (this.failure !== null) return;
    try {
      this.endOfChunk();
    } catch (err) {
      this.fail(`audit tap failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Bytes of a wanted message of this type to hand over (0: skip it). */
  protected abstract limit(type: number): number;
  /**
   * A wanted message: buf[start, end) holds at most limit(type) bytes of its `length` body
   * bytes. The bytes are only valid during the call.
   */
  protected abstract message(type: number, buf: Buffer, start: number, end: number, length: number): void;
  /** A skipped message, seen at its header. */
  protected skipped(_type: number, _length: number): void {}
  /** Called after each chunk: flush per-chunk aggregates. */
  protected endOfChunk(): void {}
  /**
   * Called from message() for a message cut to its limit: the rest of its body is handed to
   * tail() as it arrives (never held), then tailEnd() is called once the message is complete.
   */
  protected wantTail(): void {
    if (this.skipping > 0) this.streaming = true;
    else this.tailEnd();
  }
  /** Bytes of the rest of a message for which wantTail() was called; valid during the call only. */
  protected tail(_buf: Buffer, _start: number, _end: number): void {}
  protected tailEnd(): void {}
  protected abstract failed(reason: string): void;

  protected fail(reason: string): void {
    if (this.failure !== null) return;
    this.failure = reason;
    this.collect = null;
    this.collecting = false;
    this.failed(reason);
  }

  private consume(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n && this.failure === null) {
      if (this.skipping > 0 || this.collecting) {
        i = this.body(chunk, i, n);
        continue;
      }
      let type: number;
      let length: number;
      if (this.headerFill === 0 && n - i >= 5) {
        type = chunk[i]!;
        length = chunk.readInt32BE(i + 1);
        i += 5;
      } else {
        while (this.headerFill < 5 && i < n) this.header[this.headerFill++] = chunk[i++]!;
        if (this.headerFill < 5) return;
        this.headerFill = 0;
        type = this.header[0]!;
        length = this.header.readInt32BE(1);
      }
      framingCounters.messages++;
      this.begin(type, length);
    }
  }

  /** A message's header was read: its body is to be skipped, collected or handed over. */
  private begin(type: number, length: number): void {
    this.type = type;
    this.lastType = type;
    if (length < 4) {
      this.fail(`invalid message length ${length} (type 0x${type.toString(16)})`);
      return;
    }
    this.bodyLength = length - 4;
    const limit = this.limit(type);
    if (limit <= 0) {
      this.skipped(type, this.bodyLength);
      this.skipping = this.bodyLength;
      return;
    }
    this.collectTarget = Math.min(this.bodyLength, limit);
    this.collected = 0;
    if (this.collectTarget === 0) {
      // An empty body (limit > 0): handed over at its header.
      this.skipping = 0;
      this.message(type, EMPTY, 0, 0, 0);
      return;
    }
    this.collecting = true;
  }

  /** Body bytes from chunk[i, end) of the message in progress; returns where they stopped. */
  private body(chunk: Buffer, i: number, end: number): number {
    if (this.collecting) {
      if (this.collect === null) {
        if (end - i >= this.collectTarget) {
          // The wanted prefix is all here: a view, nothing copied.
          const start = i;
          i += this.collectTarget;
          this.collecting = false;
          this.skipping = this.bodyLength - this.collectTarget;
          this.message(this.type, chunk, start, i, this.bodyLength);
          return i;
        }
        this.collect = Buffer.allocUnsafe(Math.min(this.collectTarget, INITIAL_COLLECT));
      }
      return this.collectFrom(chunk, i, end);
    }
    const take = Math.min(this.skipping, end - i);
    this.skipping -= take;
    if (this.streaming) {
      this.tail(chunk, i, i + take);
      if (this.skipping === 0) {
        this.streaming = false;
        this.tailEnd();
      }
    }
    return i + take;
  }

  private collectFrom(chunk: Buffer, i: number, end: number): number {
    const buf = this.collect!;
    const take = Math.min(this.collectTarget - this.collected, end - i);
    let into = buf;
    if (this.collected + take > buf.length) {
      into = Buffer.allocUnsafe(Math.min(this.collectTarget, Math.max(buf.length * 2, this.collected + take)));
      buf.copy(into, 0, 0, this.collected);
      this.collect = into;
    }
    chunk.copy(into, this.collected, i, i + take);
    this.collected += take;
    i += take;
    if (this.collected === this.collectTarget) {
      this.collect = null;
      this.collecting = false;
      this.skipping = this.bodyLength - this.collectTarget;
      this.message(this.type, into, 0, this.collected, this.bodyLength);
    }
    return i;
  }
}

/** Where the NUL-terminated string at `at` ends (the NUL's offset), or `end` when unterminated. */
export function cstringEnd(buf: Buffer, at: number, end: number): number {
  if (at >= end) return end;
  if (buf[at] === 0) return at;
  const nul = buf.indexOf(0, at);
  return nul < 0 || nul > end ? end : nul;
}

/** The text of buf[start, end), '' without decoding when empty. */
export function utf8(buf: Buffer, start: number, end: number): string {
  return end <= start ? '' : buf.toString('utf8', start, end);
}
