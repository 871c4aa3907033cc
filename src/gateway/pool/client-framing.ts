// The client's stream of a transaction-mode session, framed once, as it arrives. The session's
// observer is handed each message as it is framed, so the audit and the SQL watch see a statement
// when it arrives, not when the pool lends a server connection (a statement's time includes the
// wait). What was framed is recorded until client-stream.ts handles it, at once when a connection
// is lent, or when one is. The records are flat arrays reused from chunk to chunk, with nothing
// allocated per message: a pgbench client sends one Query per chunk.
import { FrontendCode, framingCounters, type SessionObserver } from '../../pgwire/index.js';

/** What a record stands for. Positions are offsets in the chunk of the last Chunk record. */
export const Kind = {
  /** A chunk's messages follow (bufs: the chunk). */
  Chunk: 0,
  /** The body of a streamed message goes on at `starts` (the start of the chunk). */
  Body: 1,
  /** The bytes from `starts` on are not passed on as they came: a header cut at the chunk's end,
   * or a message read whole whose body spans chunks (a Collected record follows). */
  Gap: 2,
  /** A message read whole inside the chunk: header at `starts` (-1: the header was cut between
   * chunks), body [bodies, bodies + lengths). */
  Whole: 3,
  /** A streamed message (passed on as it comes): header at `starts` (-1: cut), body from `bodies`,
   * `lengths` bytes in all. */
  Streamed: 4,
  /** A message read whole whose body spanned chunks (bufs: the body, `lengths` bytes). */
  Collected: 5,
  /** A message length under 4: nothing after it can be framed. */
  Failed: 6,
} as const;

const P = FrontendCode.Parse;
const B = FrontendCode.Bind;
const D = FrontendCode.Describe;
const C = FrontendCode.Close;
const Q = FrontendCode.Query;
const X = FrontendCode.Terminate;

/** First allocation for a message read whole that spans chunks; doubled as its bytes come. */
const INITIAL_COLLECT = 16 * 1024;

/** Client messages read whole before they are passed on (the others stream through). */
function readWhole(type: number): boolean {
  return type === P || type === B || type === D || type === C || type === Q;
}

export class ClientFraming {
  // The records not handled yet: entry k of each array.
  readonly kinds: number[] = [];
  readonly types: number[] = [];
  readonly starts: number[] = [];
  readonly bodies: number[] = [];
  readonly lengths: number[] = [];
  readonly bufs: (Buffer | null)[] = [];
  count = 0;

  private readonly header = Buffer.alloc(5);
  private fill = 0;
  private type = 0;
  private skip = 0;
  private collect: Buffer | null = null;
  private collected = 0;
  private target = 0;
  /** A Terminate was framed: the client's stream ends there for the relay. */
  private terminated = false;
  /** A message length under 4 was framed. */
  private failed = false;

  constructor(private readonly observer: SessionObserver) {}

  /** Between two messages. */
  get atBoundary(): boolean {
    return this.fill === 0 && this.skip === 0 && this.collect === null;
  }

  /** Inside the body of a streamed message. */
  get streaming(): boolean {
    return this.skip > 0;
  }

  /** Forgets the records (handled, or never to be). */
  clear(): void {
    const bufs = this.bufs;
    for (let k = 0; k < this.count; k++) bufs[k] = null;
    this.count = 0;
  }

  /** Frames a client chunk as it arrives: the observer is handed its messages, and they are recorded. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    const observer = this.observer;
    if (this.terminated) {
      // Never passed on (the relay stops at the Terminate), but followed as before it was
      // framed here: the observer frames what comes after a Terminate itself.
      observer.fromClient(chunk);
      return;
    }
    this.record(Kind.Chunk, 0, 0, 0, 0, chunk);
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, n - i);
        if (i === 0) this.record(Kind.Body, 0, 0, 0, 0, null);
        observer.clientBody(chunk, i, i + take);
        i += take;
        this.skip -= take;
        continue;
      }
      if (this.collect !== null) {
        i = this.collectFrom(chunk, i);
        continue;
      }
      let type: number;
      let length: number;
      const start = i;
      let inChunk: boolean;
      if (this.fill === 0 && n - i >= 5) {
        type = chunk[i]!;
        length = chunk.readInt32BE(i + 1);
        i += 5;
        inChunk = true;
      } else {
        // A header cut between chunks: its bytes are never part of a run.
        if (this.fill === 0) this.record(Kind.Gap, 0, start, 0, 0, null);
        while (this.fill < 5 && i < n) this.header[this.fill++] = chunk[i++]!;
        if (this.fill < 5) break;
        this.fill = 0;
        type = this.header[0]!;
        length = this.header.readInt32BE(1);
        inChunk = false;
      }
      framingCounters.messages++;
      // The observer fails on a length under 4 itself, with the reason fromClient() would give.
      observer.clientHeader(type, length);
      if (length < 4) {
        this.failed = true;
        this.record(Kind.Failed, type, start, 0, 0, null);
        return;
      }
      const bodyLength = length - 4;
      const at = inChunk ? start : -1;
      if (readWhole(type)) {
        if (n - i >= bodyLength) {
          this.record(Kind.Whole, type, at, i, bodyLength, null);
          observer.clientBody(chunk, i, i + bodyLength);
          i += bodyLength;
        } else {
          this.record(Kind.Gap, 0, start, 0, 0, null);
          this.type = type;
          this.collect = Buffer.allocUnsafe(Math.min(bodyLength, INITIAL_COLLECT));
          this.target = bodyLength;
          this.collected = 0;
        }
        continue;
      }
      this.record(Kind.Streamed, type, at, i, bodyLength, null);
      this.skip = bodyLength;
      if (type === X) {
        // The relay reads nothing after a Terminate: the stream stays where it is.
        this.terminated = true;
        observer.fromClient(chunk.subarray(i));
        return;
      }
    }
    observer.clientChunkEnd();
  }

  /** Bytes of a message read whole that spans chunks, from chunk[i]; returns where they stopped. */
  private collectFrom(chunk: Buffer, i: number): number {
    let buf = this.collect!;
    const take = Math.min(this.target - this.collected, chunk.length - i);
    if (this.collected + take > buf.length) {
      // Grown as the bytes come, so a length alone never costs memory.
      const grown = Buffer.allocUnsafe(Math.min(this.target, Math.max(buf.length * 2, this.collected + take)));
      buf.copy(grown, 0, 0, this.collected);
      buf = grown;
      this.collect = grown;
    }
    chunk.copy(buf, this.collected, i, i + take);
    this.observer.clientBody(chunk, i, i + take);
    this.collected += take;
    if (this.collected === this.target) {
      this.collect = null;
      this.record(Kind.Collected, this.type, 0, 0, this.target, buf);
    }
    return i + take;
  }

  private record(kind: number, type: number, start: number, body: number, length: number, buf: Buffer | null): void {
    const k = this.count++;
    this.kinds[k] = kind;
    this.types[k] = type;
    this.starts[k] = start;
    this.bodies[k] = body;
    this.lengths[k] = length;
    this.bufs[k] = buf;
  }
}
