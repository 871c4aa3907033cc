// A segment the writer seals (seal.ts): each append is one frame, encrypted here, written with
// one write. A new (empty) file gets its header first; an existing sealed one is continued.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AppendFile, AuditIo } from './io.js';
import type { NativeWriter } from './native-writer.js';
import { FRAME_OVERHEAD, fileKey, isSealHeader, NONCE_BYTES, SEAL_HEADER_BYTES, SEAL_MAGIC, sealFrame, sealHeader } from './seal.js';

export class SealedAppendFile implements AppendFile {
  /** This opening's nonces: 8 random bytes, then the count of frames written since (seal.ts). */
  private readonly nonce = Buffer.alloc(NONCE_BYTES);
  private frames = 0;
  /** Where native code writes a frame (kept from frame to frame: one is written at a time). */
  private out = Buffer.alloc(0);

  private constructor(
    private readonly file: AppendFile,
    private readonly key: Buffer,
    /** The file's length after its last complete frame. */
    private bytes: number,
    private readonly native: NativeWriter | null,
  ) {
    randomBytes(8).copy(this.nonce);
  }

  /** Opens `path` for sealed appends: it is empty (a header is written) or sealed already. */
  static async open(io: AuditIo, path: string, storeKey: Uint8Array, native: NativeWriter | null = null): Promise<SealedAppendFile> {
    const file = await io.openAppend(path);
    try {
      const size = statSync(path).size;
      if (size === 0) {
        const header = sealHeader();
        await file.append(header);
        return new SealedAppendFile(file, fileKey(storeKey, header, path), header.length, native);
      }
      const header = readHeader(path);
      if (!header) throw new Error(`${path} is not a sealed segment`);
      return new SealedAppendFile(file, fileKey(storeKey, header, path), size, native);
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
  }

  async append(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    if (this.frames === 0xffff_ffff) throw new RangeError('a sealed segment opening writes at most 2^32 - 1 frames');
    this.nonce.writeUInt32BE(this.frames++, 8);
    const frame = this.native ? this.sealNatively(this.native, data) : sealFrame(this.key, this.bytes, data, this.nonce);
    await this.file.append(frame);
    this.bytes += frame.length;
  }

  private sealNatively(native: NativeWriter, data: Uint8Array): Buffer {
    if (this.out.length < FRAME_OVERHEAD + data.length) this.out = Buffer.allocUnsafe(Math.max(FRAME_OVERHEAD + data.length, 2 * this.out.length));
    return this.out.subarray(0, native.sealFrame(this.key, this.nonce, this.bytes, data, this.out));
  }

  datasync(): Promise<void> {
    return this.file.datasync();
  }

  /** Cuts a failed write off: back to the end of the last complete frame. (`length` counts
   * plaintext, which a sealed file cannot be cut at; frames hold whole writes.) */
  truncate(_length: number): Promise<void> {
    return this.file.truncate(this.bytes);
  }

  close(): Promise<void> {
    this.key.fill(0);
    return this.file.close();
  }
}

/** The header of a sealed file, or undefined when the file does not start with one. */
function readHeader(path: string): Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(SEAL_HEADER_BYTES);
    const n = readSync(fd, header, 0, SEAL_HEADER_BYTES, 0);
    return n === SEAL_HEADER_BYTES && isSealHeader(header) ? header : undefined;
  } finally {
    closeSync(fd);
  }
}

/** Does the file start with a sealed header's magic? (False for files shorter than it.) */
export function startsSealed(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const magic = Buffer.alloc(SEAL_MAGIC.length);
    return readSync(fd, magic, 0, magic.length, 0) === magic.length && isSealHeader(magic);
  } finally {
    closeSync(fd);
  }
}
