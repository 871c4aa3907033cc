// Small stream helpers for the backup code: read all of a stream, count bytes going through.
import { Transform, type Readable } from 'node:stream';

/** Reads a whole stream into memory, failing past `limit` bytes. */
export async function readAll(stream: Readable, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    n += b.length;
    if (n > limit) {
      stream.destroy();
      throw new Error(`stream larger than ${limit} bytes`);
    }
    parts.push(b);
  }
  return Buffer.concat(parts, n);
}

/** A pass-through that reports the running byte count. */
export function byteCounter(onBytes: (total: number, chunk: Buffer) => void): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      onBytes(total, chunk);
      cb(null, chunk);
    },
  });
}
