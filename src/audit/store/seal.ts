// Sealed segments (FORMAT.md): a segment file the writer encrypts itself, with AES-256-GCM in
// user space (AES-NI), instead of leaving it to an encrypted volume. A file is a header (magic,
// random salt) and frames, one per write:
//   'PWSF' | u32 length | u32 ~length | 12-byte nonce | ciphertext (length) | 16-byte tag
// The frame's key is HKDF-SHA-256(store key, salt, "pgwarden audit " + file name); its additional
// data is the frame's offset in the file (u64) and its 12 header bytes, so a frame cannot be moved,
// dropped from the middle or copied into another file without failing to open. Frames hold whole
// lines of records; their plaintext, concatenated, is the version 1 segment. A writer's nonces are
// 8 random bytes chosen each time it opens the file and a 4-byte count of its frames since, so no
// two frames of a file share one, also where a frame cut off (a failed write, a torn tail) is
// written again at the same offset with other contents.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

export const SEAL_MAGIC = Buffer.from('PGWSEAL1', 'latin1');
const SALT_BYTES = 16;
export const SEAL_HEADER_BYTES = SEAL_MAGIC.length + SALT_BYTES;
const FRAME_MAGIC = 0x50575346; // 'PWSF'
const HEAD_BYTES = 12;
export const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const FRAME_OVERHEAD = HEAD_BYTES + NONCE_BYTES + TAG_BYTES;
/** Largest plaintext of one frame; larger writes are refused (a batch is far smaller). */
export const MAX_FRAME_BYTES = 0x7fff_ffff - FRAME_OVERHEAD;
/** Bytes a store key has. */
export const STORE_KEY_BYTES = 32;

/** A new file's header: the magic and a fresh salt. */
export function sealHeader(): Buffer {
  return Buffer.concat([SEAL_MAGIC, randomBytes(SALT_BYTES)]);
}

export function isSealHeader(first: Uint8Array): boolean {
  return first.length >= SEAL_MAGIC.length && SEAL_MAGIC.equals(first.subarray(0, SEAL_MAGIC.length));
}

/** Does an open file start with a sealed header's magic? (False for files shorter than it.) */
export async function opensSealed(handle: FileHandle): Promise<boolean> {
  const magic = Buffer.alloc(SEAL_MAGIC.length);
  return (await handle.read(magic, 0, magic.length, 0)).bytesRead === magic.length && isSealHeader(magic);
}

/** The key of one sealed file, from the store key, its header and its name. */
export function fileKey(storeKey: Uint8Array, header: Uint8Array, file: string): Buffer {
  if (storeKey.length !== STORE_KEY_BYTES) throw new RangeError(`a store key has ${STORE_KEY_BYTES} bytes`);
  const salt = header.subarray(SEAL_MAGIC.length, SEAL_HEADER_BYTES);
  return Buffer.from(hkdfSync('sha256', storeKey, salt, `pgwarden audit ${path.basename(file)}`, 32));
}

function frameAad(offset: number, head: Uint8Array): Buffer {
  const aad = Buffer.allocUnsafe(8 + HEAD_BYTES);
  aad.writeBigUInt64BE(BigInt(offset), 0);
  aad.set(head, 8);
  return aad;
}

/** The frame of `data` written at `offset` of a file with key `key`, with a nonce used for no
 * other frame of the file (random when not given). */
export function sealFrame(key: Uint8Array, offset: number, data: Uint8Array, nonce: Uint8Array = randomBytes(NONCE_BYTES)): Buffer {
  if (data.length === 0 || data.length > MAX_FRAME_BYTES) throw new RangeError(`a frame holds 1 to ${MAX_FRAME_BYTES} bytes`);
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD + data.length);
  out.writeUInt32BE(FRAME_MAGIC, 0);
  out.writeUInt32BE(data.length, 4);
  out.writeUInt32BE(~data.length >>> 0, 8);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`a nonce has ${NONCE_BYTES} bytes`);
  out.set(nonce, HEAD_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(frameAad(offset, out.subarray(0, HEAD_BYTES)));
  const at = HEAD_BYTES + NONCE_BYTES;
  const n = cipher.update(data).copy(out, at);
  cipher.final().copy(out, at + n);
  cipher.getAuthTag().copy(out, at + data.length);
  return out;
}

/** The plaintext length a frame head declares, or undefined when the head is not a frame's. */
function frameLength(b: Buffer): number | undefined {
  const length = b.readUInt32BE(4);
  if (b.readUInt32BE(0) !== FRAME_MAGIC || b.readUInt32BE(8) !== ~length >>> 0) return undefined;
  return length === 0 || length > MAX_FRAME_BYTES ? undefined : length;
}

/** One frame opened: its plaintext, or why it does not open. */
export type SealedPiece =
  | { readonly kind: 'plain'; readonly data: Buffer; readonly offset: number; readonly end: number }
  /** The file ends inside a frame, or in zeros: a write cut short (or one in progress). */
  | { readonly kind: 'torn'; readonly offset: number }
  /** Bytes that are no frame of this file, or one that fails authentication: damage. */
  | { readonly kind: 'damaged'; readonly offset: number; readonly reason: string };

/** The frames of a sealed file from its start, ending after a torn or damaged one. Read frame by
 * frame, as they are asked for: the first line of a segment costs its first frame, not the file. */
export async function* readSealed(handle: FileHandle, storeKey: Uint8Array, file: string): AsyncGenerator<SealedPiece> {
  const size = (await handle.stat()).size;
  const read = async (offset: number, length: number): Promise<Buffer> => {
    const b = Buffer.allocUnsafe(Math.max(0, Math.min(length, size - offset)));
    for (let done = 0; done < b.length; ) {
      const { bytesRead } = await handle.read(b, done, b.length - done, offset + done);
      if (bytesRead === 0) return b.subarray(0, done); // the file shrank meanwhile
      done += bytesRead;
    }
    return b;
  };
  const header = await read(0, SEAL_HEADER_BYTES);
  const bad = headerPiece(header, size);
  if (bad) {
    yield bad;
    return;
  }
  const key = fileKey(storeKey, header, file);
  for (let offset = SEAL_HEADER_BYTES; offset < size; ) {
    const head = await read(offset, HEAD_BYTES);
    const length = frameAt(head, offset, size);
    if (typeof length !== 'number') {
      yield length === 'torn' ? { kind: 'torn', offset } : notAFrame(await read(offset, size - offset), offset);
      return;
    }
    const body = await read(offset + HEAD_BYTES, FRAME_OVERHEAD - HEAD_BYTES + length);
    if (body.length < FRAME_OVERHEAD - HEAD_BYTES + length) {
      yield { kind: 'torn', offset }; // cut back while it was read (a failed write)
      return;
    }
    const piece = frameOpened(key, offset, head, body);
    yield piece;
    if (piece.kind !== 'plain') return;
    offset = piece.end;
  }
}

/** readSealed over the file's bytes. */
export function* openSealed(bytes: Buffer, storeKey: Uint8Array, file: string): Generator<SealedPiece> {
  const size = bytes.length;
  const bad = headerPiece(bytes.subarray(0, SEAL_HEADER_BYTES), size);
  if (bad) {
    yield bad;
    return;
  }
  const key = fileKey(storeKey, bytes.subarray(0, SEAL_HEADER_BYTES), file);
  for (let offset = SEAL_HEADER_BYTES; offset < size; ) {
    const head = bytes.subarray(offset, offset + HEAD_BYTES);
    const length = frameAt(head, offset, size);
    if (typeof length !== 'number') {
      yield length === 'torn' ? { kind: 'torn', offset } : notAFrame(bytes.subarray(offset), offset);
      return;
    }
    const piece = frameOpened(key, offset, head, bytes.subarray(offset + HEAD_BYTES, offset + FRAME_OVERHEAD + length));
    yield piece;
    if (piece.kind !== 'plain') return;
    offset = piece.end;
  }
}

/** A file's first SEAL_HEADER_BYTES (fewer when it is shorter): undefined for a sealed header,
 * else the piece that ends the file there (a header cut short is torn). */
function headerPiece(header: Buffer, size: number): SealedPiece | undefined {
  if (size >= SEAL_HEADER_BYTES && isSealHeader(header)) return undefined;
  const magic = Math.min(header.length, SEAL_MAGIC.length);
  const torn = size < SEAL_HEADER_BYTES && SEAL_MAGIC.subarray(0, magic).equals(header.subarray(0, magic));
  return torn ? { kind: 'torn', offset: 0 } : { kind: 'damaged', offset: 0, reason: 'no sealed segment header' };
}

/** The plaintext length of the frame at `offset` from its head (up to HEAD_BYTES of it); 'torn'
 * when the file ends inside it; 'invalid' when the head is no frame's. */
function frameAt(head: Buffer, offset: number, size: number): number | 'torn' | 'invalid' {
  if (head.length < HEAD_BYTES) return 'torn';
  const length = frameLength(head);
  if (length === undefined) return 'invalid';
  return offset + FRAME_OVERHEAD + length > size ? 'torn' : length;
}

/** Bytes from `offset` to the end that are no frame: zeros (a crash's) are a torn tail, else damage. */
function notAFrame(rest: Buffer, offset: number): SealedPiece {
  return rest.every((b) => b === 0) ? { kind: 'torn', offset } : { kind: 'damaged', offset, reason: `the bytes at offset ${offset} are not a frame` };
}

/** The frame at `offset` with its head and the rest of it (`body`: nonce, ciphertext, tag), opened. */
function frameOpened(key: Buffer, offset: number, head: Buffer, body: Buffer): SealedPiece {
  const data = openFrame(key, offset, head, body);
  if (!data) return { kind: 'damaged', offset, reason: `the frame at offset ${offset} fails authentication` };
  return { kind: 'plain', data, offset, end: offset + HEAD_BYTES + body.length };
}

/** The plaintext of a sealed file's whole frames (what a torn or damaged one ends). */
export function sealedPlaintext(bytes: Buffer, storeKey: Uint8Array, file: string): Buffer {
  const parts: Buffer[] = [];
  for (const p of openSealed(bytes, storeKey, file)) if (p.kind === 'plain') parts.push(p.data);
  return Buffer.concat(parts);
}

function openFrame(key: Buffer, offset: number, head: Buffer, frame: Buffer): Buffer | undefined {
  const length = frame.length - NONCE_BYTES - TAG_BYTES;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, frame.subarray(0, NONCE_BYTES));
    decipher.setAAD(frameAad(offset, head));
    decipher.setAuthTag(frame.subarray(NONCE_BYTES + length));
    return Buffer.concat([decipher.update(frame.subarray(NONCE_BYTES, NONCE_BYTES + length)), decipher.final()]);
  } catch {
    return undefined;
  }
}
