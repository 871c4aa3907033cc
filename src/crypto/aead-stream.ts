// Chunked streaming AEAD (AES-256-GCM) for backups and WAL segments, and one-shot helpers for small
// objects. Format and guarantees: FORMAT.md; the per-chunk core: aead-format.ts.
// Encryption keeps references to at most one chunk of input (no copy; callers must not modify a
// Buffer after writing it, as with any Node stream). Decryption holds one chunk of plaintext until
// its tag verifies, then releases it: nothing unauthenticated is ever pushed.
import { Transform, type TransformCallback } from 'node:stream';
import {
  ChunkOpener,
  ChunkSealer,
  DEFAULT_CHUNK_SIZE,
  HEADER_BYTES,
  MAX_CHUNK_SIZE,
  RECORD_HEAD_BYTES,
  TAG_BYTES,
  checkKey,
  type StreamKeyOptions,
} from './aead-format.js';
import { AeadStreamError, StreamTrailingDataError, StreamTruncatedError } from './stream-errors.js';

export interface EncryptOptions extends StreamKeyOptions {
  /** Plaintext bytes per chunk, 1..16 MiB; default 1 MiB. */
  readonly chunkSize?: number;
}

export interface DecryptOptions extends StreamKeyOptions {
  /** Refuse streams whose header declares larger chunks (bounds memory); default 16 MiB. */
  readonly maxChunkSize?: number;
}

export function createEncryptStream(options: EncryptOptions): Transform {
  return new EncryptStream(options);
}

export function createDecryptStream(options: DecryptOptions): Transform {
  return new DecryptStream(options);
}

/** Encrypts a whole buffer into one PGWAEAD1 object. */
export function encryptBuffer(plaintext: Buffer, options: EncryptOptions): Buffer {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const sealer = new ChunkSealer(options, chunkSize);
  const out: Buffer[] = [sealer.header];
  let offset = 0;
  while (plaintext.length - offset >= chunkSize) {
    out.push(...sealer.seal([plaintext.subarray(offset, offset + chunkSize)], chunkSize, false));
    offset += chunkSize;
  }
  out.push(...sealer.seal([plaintext.subarray(offset)], plaintext.length - offset, true));
  return Buffer.concat(out);
}

/** Decrypts a whole PGWAEAD1 object; throws an AeadStreamError subclass on any alteration. */
export function decryptBuffer(ciphertext: Buffer, options: DecryptOptions): Buffer {
  const reader = new StreamReader(options);
  const out: Buffer[] = [];
  reader.write(ciphertext, (plain) => out.push(...plain));
  reader.end();
  return Buffer.concat(out);
}

class EncryptStream extends Transform {
  private readonly sealer: ChunkSealer;
  private readonly chunkSize: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private headerSent = false;

  constructor(options: EncryptOptions) {
    super({ readableHighWaterMark: 64 * 1024 });
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.sealer = new ChunkSealer(options, this.chunkSize);
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Buffer.isBuffer(chunk)) return callback(new TypeError('the encrypt stream takes Buffers'));
    try {
      this.sendHeader();
      let data = chunk;
      while (this.pendingBytes + data.length >= this.chunkSize) {
        const take = this.chunkSize - this.pendingBytes;
        this.pending.push(data.subarray(0, take));
        this.emitRecord(this.chunkSize, false);
        data = data.subarray(take);
      }
      if (data.length > 0) {
        this.pending.push(data);
        this.pendingBytes += data.length;
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.sendHeader();
      this.emitRecord(this.pendingBytes, true);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.push(this.sealer.header);
  }

  private emitRecord(length: number, final: boolean): void {
    const record = this.sealer.seal(this.pending, length, final);
    this.pending = [];
    this.pendingBytes = 0;
    for (const part of record) this.push(part);
  }
}

class DecryptStream extends Transform {
  private readonly reader: StreamReader;

  constructor(options: DecryptOptions) {
    super({ readableHighWaterMark: 64 * 1024 });
    this.reader = new StreamReader(options);
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!Buffer.isBuffer(chunk)) return callback(new TypeError('the decrypt stream takes Buffers'));
    try {
      this.reader.write(chunk, (plain) => {
        for (const piece of plain) this.push(piece);
      });
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.reader.end();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}

type ReaderState = 'header' | 'head' | 'body' | 'tag' | 'done';

/** The decryption state machine over arbitrary input pieces; emits each chunk's plaintext once verified. */
class StreamReader {
  private readonly options: DecryptOptions;
  private opener: ChunkOpener | undefined;
  private state: ReaderState = 'header';
  /** Fixed-size fields (header, record head, tag) gathered across input pieces. */
  private field = Buffer.alloc(HEADER_BYTES);
  private fieldFill = 0;
  private bodyLeft = 0;
  private final = false;
  private plain: Buffer[] = [];
  private total = 0;

  constructor(options: DecryptOptions) {
    checkKey(options.key);
    if (
      options.maxChunkSize !== undefined &&
      (!Number.isSafeInteger(options.maxChunkSize) || options.maxChunkSize < 1 || options.maxChunkSize > MAX_CHUNK_SIZE)
    ) {
      throw new RangeError(`maxChunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}`);
    }
    this.options = options;
  }

  write(data: Buffer, emit: (plain: Buffer[]) => void): void {
    let offset = 0;
    while (offset < data.length) {
      switch (this.state) {
        case 'header': {
          offset = this.gather(data, offset, HEADER_BYTES);
          if (this.fieldFill < HEADER_BYTES) break;
          this.opener = new ChunkOpener(this.options, Buffer.from(this.field.subarray(0, HEADER_BYTES)), this.options.maxChunkSize);
          this.toField('head');
          break;
        }
        case 'head': {
          offset = this.gather(data, offset, RECORD_HEAD_BYTES);
          if (this.fieldFill < RECORD_HEAD_BYTES) break;
          const head = this.openerOrThrow().begin(this.field.subarray(0, RECORD_HEAD_BYTES));
          this.final = head.final;
          this.bodyLeft = head.length;
          this.state = 'body';
          if (this.bodyLeft === 0) this.toField('tag');
          break;
        }
        case 'body': {
          const take = Math.min(this.bodyLeft, data.length - offset);
          const out = this.openerOrThrow().update(data.subarray(offset, offset + take));
          if (out.length > 0) this.plain.push(out);
          offset += take;
          this.bodyLeft -= take;
          if (this.bodyLeft === 0) this.toField('tag');
          break;
        }
        case 'tag': {
          offset = this.gather(data, offset, TAG_BYTES);
          if (this.fieldFill < TAG_BYTES) break;
          this.openerOrThrow().finish(this.field.subarray(0, TAG_BYTES));
          const plain = this.plain;
          this.plain = [];
          if (plain.length > 0) emit(plain);
          this.toField(this.final ? 'done' : 'head');
          break;
        }
        case 'done':
          throw new StreamTrailingDataError(`${data.length - offset} or more bytes follow the final chunk (chunk ${this.openerOrThrow().chunks - 1})`);
      }
    }
    this.total += data.length;
  }

  /** End of input: the final chunk must have been read. */
  end(): void {
    if (this.state === 'done') return;
    const chunks = this.opener?.chunks ?? 0;
    const where =
      this.state === 'header'
        ? this.total === 0
          ? 'the stream is empty (no header)'
          : `the stream ends inside its header (${this.total} of ${HEADER_BYTES} bytes)`
        : this.state === 'head' && this.fieldFill === 0
          ? chunks === 0
            ? 'the stream ends after its header, before any chunk'
            : `the stream ends after chunk ${chunks - 1} without its final chunk`
          : `the stream ends inside chunk ${chunks}`;
    throw new StreamTruncatedError(`encrypted stream truncated: ${where}`);
  }

  private openerOrThrow(): ChunkOpener {
    if (this.opener === undefined) throw new AeadStreamError('stream reader used before its header');
    return this.opener;
  }

  private gather(data: Buffer, offset: number, size: number): number {
    const take = Math.min(size - this.fieldFill, data.length - offset);
    data.copy(this.field, this.fieldFill, offset, offset + take);
    this.fieldFill += take;
    return offset + take;
  }

  private toField(state: ReaderState): void {
    this.state = state;
    this.fieldFill = 0;
  }
}
