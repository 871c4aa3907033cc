// The hash chain and Merkle frontier of the audit store's records, as the writer extends them a
// batch at a time: each record's line (record-lines.ts) hashed on from the last record's hash, and
// the hash added to the Merkle frontier (merkle.ts); natively when the addon loads
// (native-writer.ts), else in JavaScript, with the same bytes either way.
import { MerkleFrontier } from './merkle.js';
import { LINE_OVERHEAD, type NativeWriter } from './native-writer.js';
import { ZERO_HASH } from './record.js';
import { RecordLines } from './record-lines.js';
import type { QueuedRecord } from './writer-types.js';

/** Where the chain stands: the next record is seq + 1, chained on lastHash. */
export interface ChainState {
  readonly seq: number;
  readonly lastHash: string;
  readonly frontier: MerkleFrontier;
}

export class RecordChain implements ChainState {
  seq = 0;
  lastHash = ZERO_HASH;
  frontier = MerkleFrontier.empty();

  /** The last record time formatted, and its ms. */
  private timeMs = -1;
  private timeText = '';
  /** Each batch's lines, written as bytes. */
  private readonly lines = new RecordLines();
  /** Buffers kept from batch to batch for the native chain (see chainNatively). */
  private scratch = { events: Buffer.alloc(0), lines: Buffer.alloc(0), hashes: Buffer.alloc(0) };

  constructor(private readonly native: NativeWriter | null) {}

  /** The state now: chain() replaces the frontier, never changes it, so this stays as it is. */
  state(): ChainState {
    return { seq: this.seq, lastHash: this.lastHash, frontier: this.frontier };
  }

  /** Back to a state (recovered from the files, or from before a batch that was not written). */
  restore(s: ChainState): void {
    this.seq = s.seq;
    this.lastHash = s.lastHash;
    this.frontier = s.frontier;
  }

  /** The lines of a batch's valid records, chained on from the last record: natively when the
   * addon loads (native-writer.ts), else here. Moves seq and lastHash on, and replaces the
   * frontier with the one after the batch. */
  chain(batch: readonly QueuedRecord[], valid: number): { data: Buffer; hashes: string } {
    const native = this.native;
    if (native) {
      try {
        return this.chainNatively(native, batch, valid);
      } catch {
        // Refused (a time toISOString writes but it does not, say): this batch in JavaScript.
      }
    }
    const hashes: string[] = new Array(valid);
    const frontier = this.frontier.clone();
    const lines = this.lines;
    lines.reset();
    let k = 0;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      if (item.invalid !== undefined) continue;
      const seq = this.seq + 1;
      // One Date per distinct millisecond: consecutive records mostly share it.
      if (item.timeMs !== this.timeMs) {
        this.timeMs = item.timeMs;
        this.timeText = new Date(item.timeMs).toISOString();
      }
      const hash = lines.append(seq, this.timeText, this.lastHash, item.text);
      frontier.appendHex(hash);
      this.seq = seq;
      this.lastHash = hash;
      hashes[k++] = hash;
    }
    this.frontier = frontier;
    return { data: lines.bytes(), hashes: hashes.join('') };
  }

  private chainNatively(native: NativeWriter, batch: readonly QueuedRecord[], valid: number): { data: Buffer; hashes: string } {
    let bytes = 0;
    for (const r of batch) if (r.invalid === undefined) bytes += typeof r.text === 'string' ? Buffer.byteLength(r.text) : r.text.length;
    if (bytes > 0xffff_ffff) throw new RangeError('a batch this large is chained in JavaScript');
    // Written into buffers kept from batch to batch: one batch is written at a time, and its
    // lines are not used once written (new buffers each time cost page faults and GC).
    const s = this.scratch;
    if (s.events.length < bytes) s.events = Buffer.allocUnsafe(Math.max(bytes, 2 * s.events.length));
    const events = s.events.subarray(0, bytes);
    const ends = new Uint32Array(valid);
    const times = new Float64Array(valid);
    let at = 0;
    let k = 0;
    for (const r of batch) {
      if (r.invalid !== undefined) continue;
      if (typeof r.text === 'string') at += events.write(r.text, at);
      else {
        events.set(r.text, at);
        at += r.text.length;
      }
      ends[k] = at;
      times[k++] = r.timeMs;
    }
    const room = bytes + valid * LINE_OVERHEAD;
    if (s.lines.length < room) s.lines = Buffer.allocUnsafe(Math.max(room, 2 * s.lines.length));
    if (s.hashes.length < 32 * valid) s.hashes = Buffer.allocUnsafe(Math.max(32 * valid, 2 * s.hashes.length));
    const { lines, hashes: raw } = s;
    const frontier = this.frontier.packed();
    const length = native.chainRecords(events, ends, times, this.seq + 1, Buffer.from(this.lastHash, 'hex'), frontier, this.frontier.size, lines, raw);
    const hashes = raw.toString('hex', 0, 32 * valid);
    this.frontier = MerkleFrontier.fromPacked(this.frontier.size + valid, frontier);
    this.seq += valid;
    this.lastHash = hashes.slice(-64);
    return { data: lines.subarray(0, length), hashes };
  }
}
