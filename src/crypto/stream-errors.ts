// Why an encrypted stream (backup, WAL segment, small object) was refused while decrypting.
// Every error is raised before the plaintext of the offending chunk is released: what was emitted
// before it is authentic, nothing after it is emitted.

export class AeadStreamError extends Error {
  override readonly name: string = 'AeadStreamError';
}

/** Not a pgwarden stream, an unknown version, or a frame that breaks the format (see FORMAT.md). */
export class StreamFormatError extends AeadStreamError {
  override readonly name = 'StreamFormatError';
}

/** A chunk's tag did not verify: a byte was altered, chunks were reordered, or the stream belongs elsewhere (aad). */
export class ChunkAuthenticationError extends AeadStreamError {
  override readonly name = 'ChunkAuthenticationError';
  /** 0-based index of the chunk that failed. */
  readonly index: number;

  constructor(index: number) {
    super(`chunk ${index} failed authentication: the data was altered, reordered, or belongs to another stream or key`);
    this.index = index;
  }
}

/** The stream ended before its final chunk: it was cut off. */
export class StreamTruncatedError extends AeadStreamError {
  override readonly name = 'StreamTruncatedError';
}

/** Bytes follow the final chunk. */
export class StreamTrailingDataError extends AeadStreamError {
  override readonly name = 'StreamTrailingDataError';
}
