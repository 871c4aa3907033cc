// A batch of record lines written straight into bytes, each record hashed from those bytes: the
// same lines and hashes as formatRecordLine and recordHashHex (record.ts), without building each
// line and each hash input as a string and then the batch as one more (one UTF-8 encoding of each
// event instead of two, and no string for the garbage collector per record).
import { sha256Hex } from './sha256.js';

const EVENT_KEY = '{"event":';

export class RecordLines {
  /** The lines so far; grown as needed, reused from batch to batch. */
  private out = Buffer.allocUnsafe(64 * 1024);
  private length = 0;
  /** The hash input of one record: {"event":<event>,"prev":"<hex>","seq":<n>,"time":"<iso>"}. */
  private input = Buffer.allocUnsafe(8 * 1024);

  constructor() {
    this.input.write(EVENT_KEY, 0, 'latin1');
  }

  /** Starts a new batch. */
  reset(): void {
    this.length = 0;
  }

  /** Appends the line of one record and returns its hash (lowercase hex). */
  append(seq: number, time: string, prev: string, canonicalEvent: string): string {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; seq, time and hashes are ASCII.
    this.reserve(3 * canonicalEvent.length + prev.length + 160);
    const out = this.out;
    let at = this.length;
    at += out.write(`{"seq":${seq},"time":"${time}","prev":"${prev}","hash":"`, at, 'latin1');
    const hashAt = at;
    at += 64;
    at += out.write('","event":', at, 'latin1');
    const eventAt = at;
    at += out.write(canonicalEvent, at, 'utf8');
    const eventBytes = at - eventAt;
    at += out.write('}\n', at, 'latin1');

    const tail = `,"prev":"${prev}","seq":${seq},"time":"${time}"}`;
    const inputLength = EVENT_KEY.length + eventBytes + tail.length;
    if (inputLength > this.input.length) {
      this.input = Buffer.allocUnsafe(2 * inputLength);
      this.input.write(EVENT_KEY, 0, 'latin1');
    }
    out.copy(this.input, EVENT_KEY.length, eventAt, eventAt + eventBytes);
    this.input.write(tail, EVENT_KEY.length + eventBytes, 'latin1');
    const hash = sha256Hex(this.input.subarray(0, inputLength));
    out.write(hash, hashAt, 'latin1');
    this.length = at;
    return hash;
  }

  /** A copy of the batch's bytes (the caller's I/O may keep it). */
  bytes(): Buffer {
    return Buffer.from(this.out.subarray(0, this.length));
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(2 * (this.length + bytes));
    this.out.copy(grown, 0, 0, this.length);
    this.out = grown;
  }
}
