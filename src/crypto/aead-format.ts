// The PGWAEAD1 chunked AEAD format, as a pure core: header encode/parse, per-stream subkey, and the
// per-chunk seal/open steps. No stream machinery here (aead-stream.ts drives it). FORMAT.md is the spec.
//
// header = "PGWAEAD1" | version (1 byte, 1) | chunk size (uint32 BE) | salt (32 random bytes)   = 45 bytes
// subkey, nonce prefix = HKDF-SHA-256(key, salt, "pgwarden/aead-stream/v1", 40 bytes) → 32 | 8
// record = final flag (1 byte: 0|1) | plaintext length (uint32 BE) | ciphertext | GCM tag (16)
// nonce  = nonce prefix (8) | chunk index (uint32 BE)
// AAD    = header (45) | chunk index (uint32 BE) | final flag (1) | caller aad
import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomFillSync, type DecipherGCM, type KeyObject } from 'node:crypto';
import { ChunkAuthenticationError, StreamFormatError } from './stream-errors.js';

export const MAGIC = Buffer.from('PGWAEAD1', 'latin1');
export const FORMAT_VERSION = 1;
export const SALT_BYTES = 32;
export const HEADER_BYTES = MAGIC.length + 1 + 4 + SALT_BYTES; // 45
export const RECORD_HEAD_BYTES = 1 + 4;
export const TAG_BYTES = 16;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Largest chunk size a writer may choose and a reader accepts by default (bounds reader memory). */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** Chunk indexes are 32-bit: at most 2^32 chunks per stream. */
export const MAX_CHUNKS = 2 ** 32;
const INFO = Buffer.from('pgwarden/aead-stream/v1', 'latin1');
const ALGORITHM = 'aes-256-gcm' as const;

export interface StreamKeyOptions {
  /** 32-byte stream key (a data key). */
  readonly key: Buffer;
  /** Binds the stream to its object (e.g. `server:<id>:backup:<name>`); the same aad must be given to decrypt. */
  readonly aad: Buffer;
}

export function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== 32) throw new RangeError('the stream key must be a 32-byte Buffer');
}

export function checkChunkSize(chunkSize: number): void {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) {
    throw new RangeError(`chunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
}

export function encodeHeader(chunkSize: number, salt: Buffer = randomFillSync(Buffer.alloc(SALT_BYTES))): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header[MAGIC.length] = FORMAT_VERSION;
  header.writeUInt32BE(chunkSize, MAGIC.length + 1);
  salt.copy(header, MAGIC.length + 5);
  return header;
}

/** Validates a 45-byte header and returns its chunk size. */
export function parseHeader(header: Buffer, maxChunkSize: number = MAX_CHUNK_SIZE): number {
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new StreamFormatError('not a pgwarden encrypted stream (magic PGWAEAD1 missing)');
  const version = header[MAGIC.length];
  if (version !== FORMAT_VERSION)
    throw new StreamFormatError(`unsupported encrypted stream version ${String(version)} (this build reads version ${FORMAT_VERSION})`);
  const chunkSize = header.readUInt32BE(MAGIC.length + 1);
  if (chunkSize < 1 || chunkSize > maxChunkSize) throw new StreamFormatError(`the stream's chunk size ${chunkSize} is outside 1..${maxChunkSize}`);
  return chunkSize;
}

/** Per-chunk key, nonce and AAD for one stream (one header). Shared by the sealer and the opener. */
class ChunkContext {
  protected readonly subkey: KeyObject;
  protected readonly nonce = Buffer.alloc(12);
  protected readonly chunkAad: Buffer;
  protected index = 0;

  constructor(options: StreamKeyOptions, header: Buffer) {
    checkKey(options.key);
    const okm = Buffer.from(hkdfSync('sha256', options.key, header.subarray(HEADER_BYTES - SALT_BYTES, HEADER_BYTES), INFO, 40));
    try {
      this.subkey = createSecretKey(okm.subarray(0, 32));
      okm.copy(this.nonce, 0, 32, 40);
    } finally {
      okm.fill(0);
    }
    this.chunkAad = Buffer.alloc(HEADER_BYTES + 5 + options.aad.length);
    header.copy(this.chunkAad, 0);
    options.aad.copy(this.chunkAad, HEADER_BYTES + 5);
  }

  /** Chunks done so far (the index of the next one). */
  get chunks(): number {
    return this.index;
  }

  protected prepare(final: boolean): void {
    if (this.index >= MAX_CHUNKS) throw new StreamFormatError(`a stream holds at most ${MAX_CHUNKS} chunks`);
    this.nonce.writeUInt32BE(this.index, 8);
    this.chunkAad.writeUInt32BE(this.index, HEADER_BYTES);
    this.chunkAad[HEADER_BYTES + 4] = final ? 1 : 0;
  }
}

/** Encrypts the chunks of one stream in order. */
export class ChunkSealer extends ChunkContext {
  readonly header: Buffer;

  constructor(options: StreamKeyOptions, chunkSize: number) {
    checkChunkSize(chunkSize);
    const header = encodeHeader(chunkSize);
    super(options, header);
    this.header = header;
  }

  /**
   * Seals one chunk given as pieces totalling `length` bytes; returns the record as buffers in order
   * (record head, ciphertext pieces, tag). The pieces are read, not kept.
   */
  seal(pieces: readonly Buffer[], length: number, final: boolean): Buffer[] {
    this.prepare(final);
    const cipher = createCipheriv(ALGORITHM, this.subkey, this.nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(this.chunkAad);
    const head = Buffer.allocUnsafe(RECORD_HEAD_BYTES);
    head[0] = final ? 1 : 0;
    head.writeUInt32BE(length, 1);
    const out: Buffer[] = [head];
    for (const piece of pieces) if (piece.length > 0) out.push(cipher.update(piece));
    cipher.final();
    out.push(cipher.getAuthTag());
    this.index++;
    return out;
  }
}

/** A parsed record head. */
export interface RecordHead {
  readonly final: boolean;
  readonly length: number;
}

/** Decrypts the chunks of one stream in order; the caller releases a chunk's plaintext only after `finish`. */
export class ChunkOpener extends ChunkContext {
  readonly chunkSize: number;
  private decipher: DecipherGCM | undefined;

  constructor(options: StreamKeyOptions, header: Buffer, maxChunkSize?: number) {
    const chunkSize = parseHeader(header, maxChunkSize);
    super(options, header);
    this.chunkSize = chunkSize;
  }

  /** Validates a record head (5 bytes) and starts its chunk. */
  begin(headBytes: Buffer): RecordHead {
    const flag = headBytes[0];
    const length = headBytes.readUInt32BE(1);
    if (flag !== 0 && flag !== 1) throw new StreamFormatError(`chunk ${this.index} has an invalid final flag ${String(flag)}`);
    const final = flag === 1;
    if (length > this.chunkSize) throw new StreamFormatError(`chunk ${this.index} claims ${length} bytes, more than the stream's chunk size ${this.chunkSize}`);
    if (!final && length !== this.chunkSize)
      throw new StreamFormatError(`chunk ${this.index} is not the final chunk but holds ${length} of ${this.chunkSize} bytes`);
    this.prepare(final);
    this.decipher = createDecipheriv(ALGORITHM, this.subkey, this.nonce, { authTagLength: TAG_BYTES });
    this.decipher.setAAD(this.chunkAad);
    return { final, length };
  }

  update(ciphertext: Buffer): Buffer {
    if (this.decipher === undefined) throw new Error('ChunkOpener.update before begin');
    return this.decipher.update(ciphertext);
  }

  /** Verifies the chunk's tag; throws ChunkAuthenticationError when it does not verify. */
  finish(tag: Buffer): void {
    const decipher = this.decipher;
    if (decipher === undefined) throw new Error('ChunkOpener.finish before begin');
    this.decipher = undefined;
    try {
      decipher.setAuthTag(tag);
      decipher.final();
    } catch {
      throw new ChunkAuthenticationError(this.index);
    }
    this.index++;
  }
}
