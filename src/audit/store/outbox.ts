// The store's hand-off to its writer: events accepted in this turn of the event loop, sent
// together as one message (their texts as an array, their times in a transferred buffer). The
// array, not one text joined by newlines: postMessage copies each string once either way, and a
// join costs this thread another copy of every text (and the writer a slice of each). Most of
// postMessage's cost per text (about 1.2 µs with statement events) is flattening the text, a rope
// of many small strings; measured and not kept: encoding the texts into one transferred buffer
// (about 1 µs per text to encode here), a join of the texts, and flattening each text when added
// (cheaper within add and postMessage, no less event loop CPU in all).
// Batched durability: at the end of the turn, but at most once per window (16 ms, 64 under load), so a busy loop
// wakes the writer thread once per window, not once per event (a thread hop costs more than the
// record). Strict: at the end of the turn, or, while a batch is being written and fdatasync'ed,
// when it is done (the writer could not start on them sooner): one message per fdatasync.

import type { ToWriter } from './writer-host.js';

/** Batched durability: events are sent to the writer thread at most once per window (ms): each
 * hand-off costs both threads a fixed share (a message each way, structured clone, wake-ups,
 * write(2)), so fewer, larger ones. Under load (the last hand-off carried BUSY_EVENTS or more)
 * the window is BUSY_WINDOW_MS: measured in the demo with every class audited at 9,000 tx/s,
 * 64 ms against 16 ms saves the event loop about 0.6 µs and the writer thread about 1.4 µs per
 * statement (128 ms saves nothing more). Otherwise events reach the log within BATCH_WINDOW_MS.
 * Records written wait up to 200 ms for fdatasync anyway. */
const BATCH_WINDOW_MS = 16;
const BUSY_WINDOW_MS = 64;
/** A hand-off of this many events or more makes the next window BUSY_WINDOW_MS (2,000 events a
 * second and more). */
const BUSY_EVENTS = 128;
/** Events sent at once without waiting for the window. */
const MAX_MESSAGE_EVENTS = 1024;

export interface OutboxLink {
  strict(): boolean;
  /** The writer runs in this thread (no window: each turn's events go at its end). */
  inThread(): boolean;
  send(message: ToWriter, transfer?: ArrayBuffer[]): void;
  /** Tickets issued and settled so far; whether an append waits for its hash. */
  issued(): number;
  settledThrough(): number;
  wantsHashes(): boolean;
}

/** Bytes of the first buffer for texts given as bytes. */
const FIRST_BYTES = 64 * 1024;

export class Outbox {
  /** Texts; for a text given as bytes its length (its bytes are next in `bytes`); for a run of
   * texts given as bytes, minus their count (next in `bytes`, each as its length, u32 LE, and its
   * bytes): one entry, one copy, for the native relay's many records at once. */
  private texts: (string | number)[] = [];
  /** Events in `texts` (a run counts each of its texts). */
  private events = 0;
  /** The bytes of texts given as bytes, sent (transferred) with them. */
  private bytes: Buffer | null = null;
  private bytesLength = 0;
  /** One per entry of `texts` (a run's texts share theirs). */
  private times: number[] = [];
  /** Positions in texts of texts that are not canonical yet (JSON.stringify's). */
  private raw: number[] = [];
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  /** When the last events were sent (ms, the store's clock). */
  private lastSend = 0;
  /** The window after the last hand-off (BATCH_WINDOW_MS, or BUSY_WINDOW_MS under load). */
  private window = BATCH_WINDOW_MS;
  /** Tickets sent to the writer so far. */
  private sentThrough = 0;
  /** Strict: the queued events go when the batch in flight is settled. */
  private onSettle = false;

  constructor(private readonly link: OutboxLink) {}

  /** Events not sent yet. */
  get size(): number {
    return this.events;
  }

  add(text: string, canonical: boolean, now: number): void {
    if (!canonical) this.raw.push(this.texts.length);
    this.texts.push(text);
    this.times.push(now);
    this.added(1, now);
  }

  /** A text given as UTF-8 bytes (canonical JSON), copied here. */
  addBytes(json: Uint8Array, now: number): void {
    const need = this.bytesLength + json.length;
    this.bytes = this.room(need);
    this.bytes.set(json, this.bytesLength);
    this.bytesLength = need;
    this.texts.push(json.length);
    this.times.push(now);
    this.added(1, now);
  }

  /** addBytes() of `count` texts in a row, each as its length (u32 LE) and its bytes (checked by
   * the caller): copied as they are, the writer reads them apart (writer-host.ts). */
  addRun(data: Buffer, count: number, now: number): void {
    this.bytes = this.room(this.bytesLength + data.length);
    data.copy(this.bytes, this.bytesLength);
    this.bytesLength += data.length;
    this.texts.push(-count);
    this.times.push(now);
    this.added(count, now);
  }

  private added(count: number, now: number): void {
    this.events += count;
    if (this.events >= MAX_MESSAGE_EVENTS) this.flush();
    else if (!this.scheduled) this.schedule(now);
  }

  /** The bytes buffer with room for `need` bytes in all (grown, its contents kept). */
  private room(need: number): Buffer {
    if (this.bytes !== null && need <= this.bytes.length) return this.bytes;
    // Not from Node's pool: its whole ArrayBuffer is transferred with the message.
    const grown = Buffer.allocUnsafeSlow(Math.max(FIRST_BYTES, 2 * need));
    if (this.bytes !== null) this.bytes.copy(grown, 0, 0, this.bytesLength);
    return grown;
  }

  /** A batch was settled: under strict durability the queued events may go now. */
  settled(): void {
    if (this.onSettle && this.link.settledThrough() >= this.sentThrough) this.flush();
  }

  /** The writer is gone: nothing queued will be sent. */
  clear(): void {
    this.texts = [];
    this.times = [];
    this.raw = [];
    this.events = 0;
    this.bytesLength = 0;
  }

  private schedule(now: number): void {
    this.scheduled = true;
    if (this.link.inThread()) setImmediate(this.flush);
    else if (this.link.strict()) {
      if (this.sentThrough > this.link.settledThrough()) this.onSettle = true;
      else setImmediate(this.flush);
    } else {
      const wait = this.lastSend + this.window - now;
      if (wait <= 0) setImmediate(this.flush);
      else this.timer = setTimeout(this.flush, wait);
    }
  }

  /** Sends what is queued now. */
  readonly flush = (): void => {
    this.scheduled = false;
    this.onSettle = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const count = this.events;
    if (count === 0) return;
    this.lastSend = this.times[this.times.length - 1]!;
    this.window = count >= BUSY_EVENTS ? BUSY_WINDOW_MS : BATCH_WINDOW_MS;
    this.sentThrough = this.link.issued();
    const texts = this.texts;
    const times = Float64Array.from(this.times);
    const raw = this.raw;
    this.texts = [];
    this.times = [];
    this.events = 0;
    if (raw.length > 0) this.raw = [];
    const hashes = this.link.wantsHashes();
    if (this.bytesLength === 0) {
      this.link.send({ t: 'append', texts, count, times, raw, hashes }, [times.buffer as ArrayBuffer]);
      return;
    }
    const bytes = this.bytes!.subarray(0, this.bytesLength);
    // Transferred (to the writer thread; in this thread it is only read): the next ones go in a new buffer.
    this.bytes = null;
    this.bytesLength = 0;
    this.link.send({ t: 'append', texts, count, times, raw, hashes, bytes }, [times.buffer as ArrayBuffer, bytes.buffer as ArrayBuffer]);
  };
}
