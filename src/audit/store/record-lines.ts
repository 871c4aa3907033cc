// A batch of record lines written into one reusable buffer: the same lines and hashes as
// formatRecordLine and recordHashHex (record.ts). Per record, two native calls: the hash of the
// hash input as a string (crypto.hash encodes it itself) and one write of the whole line, the hash
// in place. (Writing the line in pieces and hashing from its bytes took seven calls into Buffer
// and crypto per record, which cost the writer thread more than encoding the event twice does.)
import { sha256Hex } from './sha256.js';

/** Bytes a line takes beyond its event and prev (seq, time, the hash and the keys), with room to spare. */
const LINE_OVERHEAD = 256;

export class RecordLines {
  /** The lines so far; grown as needed, reused from batch to batch. */
  private out = Buffer.allocUnsafe(64 * 1024);
  private length = 0;

  /** Starts a new batch. */
  reset(): void {
    this.length = 0;
  }

  /** Appends the line of one record and returns its hash (lowercase hex). */
  append(seq: number, time: string, prev: string, canonicalEvent: string): string {
    const hash = sha256Hex(`{"event":${canonicalEvent},"prev":"${prev}","seq":${seq},"time":"${time}"}`);
    // UTF-8 takes at most 3 bytes per UTF-16 unit (a write never cuts a line short here).
    this.reserve(3 * (canonicalEvent.length + prev.length + time.length) + LINE_OVERHEAD);
    this.length += this.out.write(`{"seq":${seq},"time":"${time}","prev":"${prev}","hash":"${hash}","event":${canonicalEvent}}\n`, this.length, 'utf8');
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
