// A batch of record lines written into a buffer: the same lines and hashes as formatRecordLine and
// recordHashHex (record.ts). The line's head (up to its hash) and its event are encoded once,
// where the line has them; the hash input, `{"event":<event>,"prev":...,"seq":...,"time":...}`,
// is laid out around the event (its `{"event":` where the line has `,"event":`, its tail, copied
// from the head's bytes, where the line ends), hashed from there, then the hash written into the
// head and the line's bytes around the event put back. Per record: two encodings (the head, the
// event), one hash of bytes and a few byte copies. (Hashing the hash input as a string and writing
// the line as another made the writer flatten and encode the event twice, and left two copies of
// it to collect: about 0.2 µs more per record in the writer thread fed batches of statement
// events, though not in a micro-benchmark of this class alone.)
import { latin1Write, utf8Write } from './buffer-write.js';
import { sha256Hex } from './sha256.js';

/** Bytes a line takes beyond its event and prev (seq, time, the hash and the keys), with room to spare. */
const LINE_OVERHEAD = 256;
/** Bytes of a batch's buffer at first. */
const FIRST_BYTES = 64 * 1024;
/** Batches this large or larger are handed over by bytes(), not copied. */
const HAND_OVER_BYTES = 16 * 1024;
/** The hash input's start, written over the line's `,"event":` (as long) before the event. */
const EVENT_KEY = Buffer.from('{"event":', 'latin1');
/** `","event":` between the hash and the event in the line. */
const AFTER_HASH = 10;

export class RecordLines {
  /** The lines so far; grown as needed, reused or handed over by bytes(). */
  private out = Buffer.allocUnsafe(FIRST_BYTES);
  private length = 0;

  /** Starts a new batch. */
  reset(): void {
    this.length = 0;
  }

  /** Appends the line of one record and returns its hash (lowercase hex). The event is its
   * canonical JSON, as a string or as UTF-8 bytes. */
  append(seq: number, time: string, prev: string, canonicalEvent: string | Uint8Array): string {
    const head = `{"seq":${seq},"time":"${time}","prev":"${prev}","hash":"`;
    const bytes = typeof canonicalEvent !== 'string';
    // UTF-8 takes at most 3 bytes per UTF-16 unit (a write never cuts an event short here).
    this.reserve((bytes ? canonicalEvent.length : 3 * canonicalEvent.length) + 3 * (prev.length + time.length) + LINE_OVERHEAD);
    const out = this.out;
    const at = this.length;
    // seq, time (toISOString) and prev (hex) are ASCII: as many bytes as characters, else the slow way.
    if (utf8Write(out, head, at, out.length - at) !== head.length) {
      return this.appendText(
        seq,
        time,
        prev,
        bytes ? Buffer.from(canonicalEvent.buffer, canonicalEvent.byteOffset, canonicalEvent.length).toString('utf8') : canonicalEvent,
      );
    }
    const hashAt = at + head.length;
    const eventAt = hashAt + 64 + AFTER_HASH;
    let eventEnd: number;
    if (bytes) {
      out.set(canonicalEvent, eventAt);
      eventEnd = eventAt + canonicalEvent.length;
    } else eventEnd = eventAt + utf8Write(out, canonicalEvent, eventAt, out.length - eventAt);
    // The hash input: `{"event":` over the line's `,"event":`, the event, and its tail from the
    // head's pieces: `,"prev":"<prev>"`, `,`, `"seq":<seq>`, `,"time":"<time>"`, `}`.
    const digits = head.length - 36 - time.length - prev.length;
    const timeAt = at + 7 + digits; // `,"time":"<time>"`
    const prevAt = timeAt + 10 + time.length; // `,"prev":"<prev>"`
    out.set(EVENT_KEY, eventAt - EVENT_KEY.length);
    let end = eventEnd;
    out.copyWithin(end, prevAt, prevAt + 10 + prev.length);
    end += 10 + prev.length;
    out[end++] = 0x2c; // ,
    out.copyWithin(end, at + 1, timeAt);
    end += timeAt - at - 1;
    out.copyWithin(end, timeAt, prevAt);
    end += prevAt - timeAt;
    out[end++] = 0x7d; // }
    // A plain view, not out.subarray(): a Buffer view costs twice as much to make.
    const hash = sha256Hex(new Uint8Array(out.buffer, out.byteOffset + eventAt - EVENT_KEY.length, end - eventAt + EVENT_KEY.length));
    latin1Write(out, hash, hashAt, 64);
    out[eventAt - AFTER_HASH] = 0x22; // "
    out[eventAt - AFTER_HASH + 1] = 0x2c; // ,
    out[eventEnd] = 0x7d; // }
    out[eventEnd + 1] = 0x0a; // \n
    this.length = eventEnd + 2;
    return hash;
  }

  /** append() for fields that are not ASCII (never for the writer's own): the line as a string. */
  private appendText(seq: number, time: string, prev: string, canonicalEvent: string): string {
    const hash = sha256Hex(`{"event":${canonicalEvent},"prev":"${prev}","seq":${seq},"time":"${time}"}`);
    const line = `{"seq":${seq},"time":"${time}","prev":"${prev}","hash":"${hash}","event":${canonicalEvent}}\n`;
    this.reserve(3 * line.length);
    this.length += utf8Write(this.out, line, this.length, this.out.length - this.length);
    return hash;
  }

  /** The batch's bytes, the caller's from now on (its I/O may keep them). A small batch is copied;
   * a larger one is handed over and the next batch written into a new buffer (the copy cost the
   * writer thread about 0.05 µs per record, and a new buffer is made for the copy anyway). */
  bytes(): Buffer {
    const data = this.out.subarray(0, this.length);
    if (this.length < HAND_OVER_BYTES) return Buffer.from(data);
    this.out = Buffer.allocUnsafe(Math.max(FIRST_BYTES, Math.min(this.out.length, 2 * this.length)));
    this.length = 0;
    return data;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(2 * (this.length + bytes));
    this.out.copy(grown, 0, 0, this.length);
    this.out = grown;
  }
}
