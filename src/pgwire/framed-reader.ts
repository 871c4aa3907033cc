// The incremental framing both readers share. Chunks go in with push(); whole frames come out of
// next(). Memory is bounded: a frame that lies inside one chunk is returned as a zero-copy
// subarray; a frame that spans chunks is collected piece by piece (tiny pieces coalesced, so a
// one-byte-per-packet sender costs no per-chunk overhead) and copied once when complete.
// Nothing is allocated from a declared length: only bytes that actually arrived are held.

import { protocolViolation } from './protocol-error.js';

/** Pieces shorter than this are copied into a shared block instead of being kept as views. */
const COALESCE_BELOW = 4096;
const COALESCE_BLOCK = 16384;

export abstract class FramedReader<T> {
  /** Current chunk and read position in it. */
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** A frame in progress that spans chunks. */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private block: Buffer | null = null;
  private blockFilled = 0;
  /** Total size of the frame in progress, once its header is known (0 = not yet). */
  private expected = 0;
  private failure: Error | null = null;

  protected constructor(
    private readonly headerSize: number,
    /** Largest frame, header included: the memory bound. */
    private readonly maxFrame: number,
  ) {}

  /** Validates a header and returns the total frame size (header included). */
  protected abstract frameSize(byteAt: (i: number) => number): number;
  protected abstract decode(frame: Buffer): T;

  /** Bytes currently held (unread input plus a partial frame). */
  get buffered(): number {
    return this.chunk.length - this.pos + this.inProgress();
  }

  /**
   * Adds input. Call next() until it returns null between pushes; if unread input already
   * exceeds one maximum-size frame, the peer is flooding and this throws ProtocolError.
   */
  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    const unread = this.chunk.length - this.pos;
    if (unread === 0) {
      this.chunk = chunk;
    } else {
      if (unread + this.inProgress() > this.maxFrame) {
        throw this.fail(protocolViolation('too much unprocessed input'));
      }
      this.chunk = Buffer.concat([this.chunk.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  /** The next complete frame, or null when more input is needed. */
  next(): T | null {
    if (this.failure) throw this.failure;
    try {
      return this.step();
    } catch (err) {
      throw this.fail(err as Error);
    }
  }

  *[Symbol.iterator](): Generator<T, void, undefined> {
    for (let frame = this.next(); frame !== null; frame = this.next()) yield frame;
  }

  /**
   * Hands over every byte held (a partial frame and unread input, in order) and empties the
   * reader: for a relay taking over after the handshake.
   */
  rest(): Buffer {
    const pieces = this.collectParts();
    const unread = this.chunk.subarray(this.pos);
    if (unread.length > 0) pieces.push(unread);
    this.chunk = Buffer.alloc(0);
    this.pos = 0;
    this.expected = 0;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  private step(): T | null {
    const available = this.chunk.length - this.pos;

    if (this.inProgress() > 0) {
      if (this.expected === 0) {
        const missing = this.headerSize - this.inProgress();
        this.take(Math.min(missing, available));
        if (this.inProgress() < this.headerSize) return null;
        this.expected = this.frameSize((i) => this.partByte(i));
      }
      const missing = this.expected - this.inProgress();
      const taken = this.take(Math.min(missing, this.chunk.length - this.pos));
      if (taken < missing) return null;
      const parts = this.collectParts();
      this.expected = 0;
      return this.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }

    if (available === 0) return null;
    if (available >= this.headerSize) {
      const start = this.pos;
      const size = this.frameSize((i) => this.chunk[start + i]!);
      if (available >= size) {
        this.pos += size;
        return this.decode(this.chunk.subarray(start, start + size));
      }
      this.expected = size;
    }
    this.take(available);
    return null;
  }

  private inProgress(): number {
    return this.partsLength + this.blockFilled;
  }

  /** Moves `n` bytes of the current chunk into the frame in progress. */
  private take(n: number): number {
    if (n <= 0) return 0;
    const piece = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    if (piece.length >= COALESCE_BELOW) {
      this.flushBlock();
      this.parts.push(piece);
      this.partsLength += piece.length;
      return n;
    }
    let offset = 0;
    while (offset < piece.length) {
      if (this.block === null) {
        // Sized to what can still arrive, so a slow sender of a short frame costs little.
        const size = this.expected > 0 ? Math.min(COALESCE_BLOCK, this.expected - this.partsLength) : this.headerSize;
        this.block = Buffer.allocUnsafe(size);
        this.blockFilled = 0;
      }
      const copied = piece.copy(this.block, this.blockFilled, offset);
      this.blockFilled += copied;
      offset += copied;
      if (this.blockFilled === this.block.length) this.flushBlock();
    }
    return n;
  }

  private flushBlock(): void {
    if (this.block !== null && this.blockFilled > 0) {
      this.parts.push(this.block.subarray(0, this.blockFilled));
      this.partsLength += this.blockFilled;
    }
    this.block = null;
    this.blockFilled = 0;
  }

  private collectParts(): Buffer[] {
    this.flushBlock();
    const parts = this.parts;
    this.parts = [];
    this.partsLength = 0;
    return parts;
  }

  /** Byte `i` of the frame in progress (only used for the few header bytes). */
  private partByte(i: number): number {
    for (const part of this.parts) {
      if (i < part.length) return part[i]!;
      i -= part.length;
    }
    return this.block![i]!;
  }

  private fail(err: Error): Error {
    this.failure = err;
    return err;
  }
}
