import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HEADER_BYTES, RECORD_HEAD_BYTES, TAG_BYTES } from '../../../src/crypto/aead-format.js';
import { createDecryptStream, createEncryptStream, decryptBuffer, encryptBuffer } from '../../../src/crypto/aead-stream.js';
import {
  AeadStreamError,
  ChunkAuthenticationError,
  StreamFormatError,
  StreamTrailingDataError,
  StreamTruncatedError,
} from '../../../src/crypto/stream-errors.js';

const key = randomBytes(32);
const aad = Buffer.from('server:s1:backup:base-0001', 'utf8');
const CHUNK = 64;
const RECORD = RECORD_HEAD_BYTES + CHUNK + TAG_BYTES;

/** Runs pieces through a transform; returns what came out, and the error if it failed. */
async function through(transform: Transform, pieces: readonly Buffer[]): Promise<{ out: Buffer; error?: unknown }> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  try {
    await pipeline(Readable.from(pieces), transform, sink);
    return { out: Buffer.concat(out) };
  } catch (error) {
    return { out: Buffer.concat(out), error };
  }
}

function split(data: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) pieces.push(data.subarray(i, i + size));
  return pieces;
}

/** Offset of record `index` in a stream of full CHUNK-sized records. */
const recordAt = (index: number): number => HEADER_BYTES + index * RECORD;

function decryptFails(ciphertext: Buffer, errorClass: new (...args: never[]) => AeadStreamError, message?: RegExp, options = { key, aad }): AeadStreamError {
  try {
    decryptBuffer(ciphertext, options);
  } catch (err) {
    assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
    if (message !== undefined) assert.match(err.message, message);
    return err;
  }
  assert.fail(`decryption succeeded, expected ${errorClass.name}`);
}

describe('AEAD stream round trips', () => {
  const sizes = { empty: 0, one: 1, 'chunk-1': CHUNK - 1, chunk: CHUNK, 'chunk+1': CHUNK + 1, 'many chunks': CHUNK * 37 + 5, 'many on a boundary': CHUNK * 20 };
  for (const [name, size] of Object.entries(sizes)) {
    it(`one-shot and streamed: ${name} (${size} bytes)`, async () => {
      const plain = randomBytes(size);
      const sealed = encryptBuffer(plain, { key, aad, chunkSize: CHUNK });
      assert.deepEqual(decryptBuffer(sealed, { key, aad }), plain);
      // stream encrypt with odd input pieces, stream decrypt with other odd pieces; both directions interoperate
      for (const [inPiece, outPiece] of [
        [7, 3],
        [CHUNK, 1000],
        [1000, RECORD],
      ] as const) {
        const enc = await through(createEncryptStream({ key, aad, chunkSize: CHUNK }), split(plain, inPiece));
        assert.equal(enc.error, undefined);
        assert.deepEqual(decryptBuffer(enc.out, { key, aad }), plain);
        const dec = await through(createDecryptStream({ key, aad }), split(sealed, outPiece));
        assert.equal(dec.error, undefined);
        assert.deepEqual(dec.out, plain);
      }
    });
  }

  it('a stream whose data ends on a chunk boundary ends with an empty final chunk', () => {
    const sealed = encryptBuffer(randomBytes(CHUNK * 2), { key, aad, chunkSize: CHUNK });
    assert.equal(sealed.length, HEADER_BYTES + 2 * RECORD + RECORD_HEAD_BYTES + TAG_BYTES);
    assert.equal(sealed[recordAt(2)], 1, 'final flag of the empty last chunk');
    assert.equal(sealed.readUInt32BE(recordAt(2) + 1), 0);
    assert.equal(sealed[recordAt(1)], 0, 'the full chunk before it is not final');
  });

  it('the header is PGWAEAD1, version 1, the chunk size, and a random salt', () => {
    const a = encryptBuffer(Buffer.from('x'), { key, aad });
    const b = encryptBuffer(Buffer.from('x'), { key, aad });
    assert.equal(a.subarray(0, 8).toString('latin1'), 'PGWAEAD1');
    assert.equal(a[8], 1);
    assert.equal(a.readUInt32BE(9), 1024 * 1024, 'default chunk size 1 MiB');
    assert.notDeepEqual(a.subarray(13, 45), b.subarray(13, 45), 'salt differs per stream');
    assert.notDeepEqual(a.subarray(45), b.subarray(45), 'so do the ciphertexts of equal plaintexts');
  });

  it('a 3 MiB stream with the default chunk size', async () => {
    const plain = randomBytes(3 * 1024 * 1024 + 123);
    const enc = await through(createEncryptStream({ key, aad }), split(plain, 65536));
    const dec = await through(createDecryptStream({ key, aad }), split(enc.out, 100_000));
    assert.equal(dec.error, undefined);
    assert.ok(dec.out.equals(plain));
  });

  it('refuses a bad key or chunk size up front', () => {
    assert.throws(() => createEncryptStream({ key: randomBytes(16), aad }), RangeError);
    assert.throws(() => createEncryptStream({ key, aad, chunkSize: 0 }), RangeError);
    assert.throws(() => createEncryptStream({ key, aad, chunkSize: 17 * 1024 * 1024 }), RangeError);
    assert.throws(() => createDecryptStream({ key: Buffer.alloc(31), aad }), RangeError);
  });
});

describe('AEAD stream tampering', () => {
  const plain = randomBytes(CHUNK * 20 + 10); // chunks 0..19 full, chunk 20 final with 10 bytes
  const sealed = encryptBuffer(plain, { key, aad, chunkSize: CHUNK });
  const copy = (): Buffer => Buffer.from(sealed);

  it('an altered byte: ChunkAuthenticationError naming the chunk, nothing of that chunk released', async () => {
    const bad = copy();
    bad[recordAt(17) + RECORD_HEAD_BYTES + 5] ^= 0x01;
    const err = decryptFails(bad, ChunkAuthenticationError, /^chunk 17 failed authentication/);
    assert.equal((err as ChunkAuthenticationError).index, 17);
    const streamed = await through(createDecryptStream({ key, aad }), split(bad, 33));
    assert.ok(streamed.error instanceof ChunkAuthenticationError);
    assert.equal(streamed.error.message.startsWith('chunk 17 failed authentication'), true);
    assert.deepEqual(streamed.out, plain.subarray(0, 17 * CHUNK), 'exactly the 17 authentic chunks came out');
  });

  it('an altered tag byte', () => {
    const bad = copy();
    bad[recordAt(3) + RECORD - 1] ^= 0x80;
    decryptFails(bad, ChunkAuthenticationError, /^chunk 3 /);
  });

  it('truncation: the final chunk missing', () => {
    decryptFails(sealed.subarray(0, recordAt(20)), StreamTruncatedError, /ends after chunk 19 without its final chunk/);
  });

  it('truncation: cut inside a chunk, inside the header, or empty', async () => {
    decryptFails(sealed.subarray(0, recordAt(5) + 30), StreamTruncatedError, /inside chunk 5/);
    decryptFails(sealed.subarray(0, 20), StreamTruncatedError, /inside its header/);
    decryptFails(sealed.subarray(0, HEADER_BYTES), StreamTruncatedError, /before any chunk/);
    decryptFails(Buffer.alloc(0), StreamTruncatedError, /empty/);
    const streamed = await through(createDecryptStream({ key, aad }), split(sealed.subarray(0, recordAt(20)), 50));
    assert.ok(streamed.error instanceof StreamTruncatedError);
  });

  it('truncation disguised: the last full chunk marked final', () => {
    const bad = Buffer.from(sealed.subarray(0, recordAt(20)));
    bad[recordAt(19)] = 1;
    decryptFails(bad, ChunkAuthenticationError, /^chunk 19 /);
  });

  it('reordering: two chunks swapped', () => {
    const bad = copy();
    sealed.copy(bad, recordAt(4), recordAt(5), recordAt(6));
    sealed.copy(bad, recordAt(5), recordAt(4), recordAt(5));
    decryptFails(bad, ChunkAuthenticationError, /^chunk 4 /);
  });

  it('a chunk dropped from the middle', () => {
    const bad = Buffer.concat([sealed.subarray(0, recordAt(8)), sealed.subarray(recordAt(9))]);
    decryptFails(bad, ChunkAuthenticationError, /^chunk 8 /);
  });

  it('a chunk spliced in from another stream under the same key and aad', () => {
    const other = encryptBuffer(randomBytes(CHUNK * 20 + 10), { key, aad, chunkSize: CHUNK });
    const bad = copy();
    other.copy(bad, recordAt(2), recordAt(2), recordAt(3));
    decryptFails(bad, ChunkAuthenticationError, /^chunk 2 /);
  });

  it('a whole stream moved to another file (other aad) or read with another key', () => {
    decryptFails(sealed, ChunkAuthenticationError, /^chunk 0 /, { key, aad: Buffer.from('server:s2:backup:base-0001') });
    decryptFails(sealed, ChunkAuthenticationError, /^chunk 0 /, { key: randomBytes(32), aad });
  });

  it('trailing garbage after the final chunk', async () => {
    decryptFails(Buffer.concat([sealed, Buffer.from('garbage')]), StreamTrailingDataError, /follow the final chunk/);
    decryptFails(Buffer.concat([sealed, sealed]), StreamTrailingDataError);
    const streamed = await through(createDecryptStream({ key, aad }), [sealed, Buffer.from([0])]);
    assert.ok(streamed.error instanceof StreamTrailingDataError);
  });

  it('header tampering: magic, version, chunk size, salt', () => {
    const magic = copy();
    magic[0] = 0x58;
    decryptFails(magic, StreamFormatError, /not a pgwarden encrypted stream/);
    const version = copy();
    version[8] = 2;
    decryptFails(version, StreamFormatError, /unsupported encrypted stream version 2/);
    const size = copy();
    size.writeUInt32BE(CHUNK + 1, 9);
    decryptFails(size, AeadStreamError);
    const salt = copy();
    salt[20] ^= 1;
    decryptFails(salt, ChunkAuthenticationError, /^chunk 0 /);
    const huge = copy();
    huge.writeUInt32BE(64 * 1024 * 1024, 9);
    decryptFails(huge, StreamFormatError, /chunk size/);
  });

  it('frame tampering: flag and length', () => {
    const flag = copy();
    flag[recordAt(6)] = 2;
    decryptFails(flag, StreamFormatError, /invalid final flag/);
    const length = copy();
    length.writeUInt32BE(CHUNK - 1, recordAt(6) + 1);
    decryptFails(length, AeadStreamError);
    const over = copy();
    over.writeUInt32BE(CHUNK + 1, recordAt(6) + 1);
    decryptFails(over, StreamFormatError, /more than the stream's chunk size/);
  });

  it('property: any single altered byte anywhere is detected', () => {
    const small = encryptBuffer(randomBytes(CHUNK * 3 + 7), { key, aad, chunkSize: CHUNK });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: small.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const bad = Buffer.from(small);
        bad[at] = (bad[at] ?? 0) ^ mask;
        assert.throws(() => decryptBuffer(bad, { key, aad }), AeadStreamError);
      }),
      { numRuns: 400 },
    );
  });
});

describe('AEAD stream properties and backpressure', () => {
  it('property: decrypt(encrypt(x)) = x for any data, chunk size and input split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 1, max: 900 }),
        async (bytes, chunkSize, piece) => {
          const plain = Buffer.from(bytes);
          const enc = await through(createEncryptStream({ key, aad, chunkSize }), split(plain, piece));
          assert.equal(enc.error, undefined);
          const dec = await through(createDecryptStream({ key, aad }), split(enc.out, piece + 3));
          assert.equal(dec.error, undefined);
          assert.deepEqual(dec.out, plain);
          assert.deepEqual(decryptBuffer(encryptBuffer(plain, { key, aad, chunkSize }), { key, aad }), plain);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('an unread encrypt stream pushes back on its writer and buffers at most about one chunk', async () => {
    const chunkSize = 64 * 1024;
    const stream = createEncryptStream({ key, aad, chunkSize });
    const piece = randomBytes(16 * 1024);
    let writes = 0;
    while (writes < 1000 && stream.write(piece)) writes++;
    assert.ok(writes < 1000, 'write() returned false: the writer is told to wait');
    await new Promise((resolve) => setImmediate(resolve));
    const held = stream.readableLength + stream.writableLength;
    assert.ok(held <= 4 * chunkSize, `held ${held} bytes`);
    // once read, the data flows and the stream finishes
    stream.end();
    const out: Buffer[] = [];
    for await (const c of stream) out.push(c as Buffer);
    const plain = decryptBuffer(Buffer.concat(out), { key, aad });
    assert.equal(plain.length, (writes + 1) * piece.length);
  });
});
