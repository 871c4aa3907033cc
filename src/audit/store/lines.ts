// Reading files line by line with byte offsets, bounded line length, and a flag for a last line
// that has no "\n" (a torn write). Lines are decoded as strict UTF-8: invalid bytes come back as
// `text: undefined`, for the caller to report. A sealed segment (seal.ts) is read as its
// plaintext, with the key its store holds (seal-keys.ts); offsets are then the plaintext's.
import { open, type FileHandle } from 'node:fs/promises';
import { opensSealed, readSealed } from './seal.js';
import { storeKeyOf } from './seal-keys.js';

export interface FileLine {
  /** 1-based. */
  readonly lineNo: number;
  /** Byte offset of the line's first byte. */
  readonly offset: number;
  /** Bytes including the "\n" when complete. */
  readonly bytes: number;
  readonly complete: boolean;
  /** The line without "\n"; undefined when not valid UTF-8 or longer than maxLineBytes. */
  readonly text: string | undefined;
  /** Why the line could not be read at all: a sealed segment's frame that does not open. */
  readonly damage?: string;
}

const CHUNK = 1 << 20;
const decoder = new TextDecoder('utf-8', { fatal: true });

function decode(buf: Buffer): string | undefined {
  try {
    return decoder.decode(buf);
  } catch {
    return undefined;
  }
}

export async function* readLines(file: string, maxLineBytes: number): AsyncGenerator<FileLine> {
  const handle = await open(file, 'r');
  try {
    yield* splitLines((await opensSealed(handle)) ? plainOfSealed(handle, file) : chunksOf(handle), maxLineBytes);
  } finally {
    await handle.close();
  }
}

/** What a file's lines are split from: its bytes, or where they end in damage or a torn frame. */
type Piece = Buffer | { readonly damage: string } | { readonly torn: true };

async function* chunksOf(handle: FileHandle): AsyncGenerator<Piece> {
  const chunk = Buffer.allocUnsafe(CHUNK);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(chunk, 0, CHUNK, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
}

/** A sealed segment's plaintext, frame by frame (seal.ts), with the key its store holds. */
async function* plainOfSealed(handle: FileHandle, file: string): AsyncGenerator<Piece> {
  for await (const piece of readSealed(handle, storeKeyOf(file), file)) {
    if (piece.kind === 'plain') yield piece.data;
    else if (piece.kind === 'torn') yield { torn: true };
    else yield { damage: `${piece.reason} (sealed segment)` };
  }
}

async function* splitLines(pieces: AsyncIterable<Piece>, maxLineBytes: number): AsyncGenerator<FileLine> {
  let lineNo = 0;
  let offset = 0; // of the first byte of `parts`
  let parts: Buffer[] = [];
  let partBytes = 0;
  let oversized = false;
  let torn = false;
  for await (const data of pieces) {
    if (!Buffer.isBuffer(data)) {
      if ('damage' in data) {
        yield { lineNo: ++lineNo, offset, bytes: partBytes, complete: true, text: undefined, damage: data.damage };
        return;
      }
      torn = true;
      break;
    }
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      const piece = data.subarray(start, nl);
      const bytes = partBytes + piece.length + 1;
      let text: string | undefined;
      if (!oversized && bytes - 1 <= maxLineBytes) text = decode(parts.length ? Buffer.concat([...parts, piece]) : piece);
      yield { lineNo: ++lineNo, offset, bytes, complete: true, text };
      offset += bytes;
      parts = [];
      partBytes = 0;
      oversized = false;
      start = nl + 1;
    }
    const rest = data.subarray(start);
    if (rest.length > 0) {
      partBytes += rest.length;
      if (partBytes > maxLineBytes) {
        oversized = true;
        parts = [];
      } else {
        parts.push(Buffer.from(rest));
      }
    }
  }
  if (partBytes > 0 || torn) {
    yield { lineNo: ++lineNo, offset, bytes: partBytes, complete: false, text: oversized || torn ? undefined : decode(Buffer.concat(parts)) };
  }
}

/** The first complete line of a file, or undefined when it has none within maxLineBytes. */
export async function readFirstLine(file: string, maxLineBytes: number): Promise<string | undefined> {
  for await (const line of readLines(file, maxLineBytes)) return line.complete ? line.text : undefined;
  return undefined;
}

/** The last complete line of a file (reading backwards, past a torn tail), or undefined. */
export async function readLastLine(file: string, maxLineBytes: number): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    if (await opensSealed(handle)) {
      // Frames are read from the start (each one opens with its offset); the last complete line wins.
      let last: string | undefined;
      for await (const l of splitLines(plainOfSealed(handle, file), maxLineBytes)) if (l.complete && l.text !== undefined) last = l.text;
      return last;
    }
    let pos = (await handle.stat()).size;
    let buf = Buffer.alloc(0); // bytes [pos, pos + buf.length): up to the last "\n" once it is found
    let found = false;
    while (pos > 0) {
      const n = Math.min(CHUNK, pos);
      const chunk = Buffer.allocUnsafe(n);
      await handle.read(chunk, 0, n, pos - n);
      pos -= n;
      buf = Buffer.concat([chunk, buf]);
      if (!found) {
        const nl = buf.lastIndexOf(10);
        if (nl === -1) {
          buf = Buffer.alloc(0);
          continue;
        }
        found = true;
        buf = buf.subarray(0, nl);
      }
      const prev = buf.length === 0 ? -1 : buf.lastIndexOf(10, buf.length - 1);
      if (prev !== -1) return decode(buf.subarray(prev + 1));
      if (buf.length > maxLineBytes) return undefined;
    }
    return found ? decode(buf) : undefined;
  } finally {
    await handle.close();
  }
}
