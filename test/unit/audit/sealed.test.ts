// Sealed segments: a store opened with a store key writes its segments encrypted (AES-256-GCM,
// seal.ts). What a reader of the disk sees, what an attacker's edits do, and how crashes and
// failed writes are cut back, through the real store, reader and verifier.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AuditCorruptError, AuditKeyError } from '../../../src/audit/store/errors.js';
import { readRecords } from '../../../src/audit/store/read-records.js';
import { FRAME_OVERHEAD, openSealed, readSealed, SEAL_HEADER_BYTES, sealFrame, fileKey, sealHeader, type SealedPiece } from '../../../src/audit/store/seal.js';
import { holdStoreKey } from '../../../src/audit/store/seal-keys.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { appendMany, openStore, RecordingIo, segmentFiles, tempRoot } from './helpers.js';

async function sealedStore(records: number, extra: Parameters<typeof openStore>[2] = {}) {
  const t = tempRoot();
  const key = randomBytes(32);
  const store = await openStore(t.dir, t.keyFile, { sealKey: key, ...extra });
  for (let i = 0; i < records; i += 50) await appendMany(store, i, Math.min(50, records - i));
  await store.close();
  return { ...t, key, publicKey: store.publicKey };
}

async function allRecords(dir: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const r of readRecords(dir)) seqs.push(r.seq);
  return seqs;
}

async function withKey<T>(dir: string, key: Buffer, use: () => Promise<T>): Promise<T> {
  const release = holdStoreKey(dir, key);
  try {
    return await use();
  } finally {
    release();
  }
}

async function pieces(file: string, key: Buffer): Promise<SealedPiece[]> {
  const handle = await open(file, 'r');
  try {
    const out: SealedPiece[] = [];
    for await (const p of readSealed(handle, key, file)) out.push(p);
    return out;
  } finally {
    await handle.close();
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe('sealed audit segments', () => {
  it('keeps no record in clear on disk, and reads, searches and verifies with the key held', async () => {
    const s = await sealedStore(300, { maxSegmentBytes: 16 * 1024, checkpointEvery: 50 });
    const segments = segmentFiles(s.dir);
    assert.ok(segments.length > 2, `${segments.length} segments`);
    for (const name of segments) {
      const bytes = readFileSync(path.join(s.dir, name));
      assert.equal(bytes.subarray(0, 8).toString('latin1'), 'PGWSEAL1');
      for (const clear of ['"seq":', 'statement', 'srv1', '10.0.0.5']) assert.equal(bytes.includes(clear), false, `${name} holds ${clear}`);
    }
    await withKey(s.dir, s.key, async () => {
      assert.deepEqual(await allRecords(s.dir), range(300));
      const report = await verifyStore(s.dir, { publicKey: s.publicKey });
      assert.equal(report.ok, true, JSON.stringify(report.failure));
      assert.equal(report.records, 300);
    });
  });

  it('refuses to read without the key, and with another one', async () => {
    const s = await sealedStore(10);
    await assert.rejects(allRecords(s.dir), AuditKeyError);
    await withKey(s.dir, randomBytes(32), async () => {
      await assert.rejects(allRecords(s.dir), (err: Error) => err instanceof AuditCorruptError && /fails authentication/.test(err.message));
    });
    await assert.rejects(openStore(s.dir, s.keyFile, { sealKey: randomBytes(32) }), AuditCorruptError);
  });

  it('cuts a torn last frame (or zeros) at open, keeps every record before it, and goes on', async () => {
    for (const tail of ['torn', 'zeros'] as const) {
      const s = await sealedStore(100);
      const [name] = segmentFiles(s.dir);
      const file = path.join(s.dir, name!);
      const size = statSync(file).size;
      const key = fileKey(s.key, readFileSync(file).subarray(0, SEAL_HEADER_BYTES), file);
      const frame = sealFrame(key, size, Buffer.from('{"seq":101}\n'));
      appendFileSync(file, tail === 'torn' ? frame.subarray(0, frame.length - 5) : Buffer.alloc(300));
      const store = await openStore(s.dir, s.keyFile, { sealKey: s.key });
      assert.deepEqual(store.recovery.truncated, [{ file: name, offset: size, bytes: tail === 'torn' ? frame.length - 5 : 300, line: 101 }]);
      await appendMany(store, 100, 5);
      await store.close();
      await withKey(s.dir, s.key, async () => {
        assert.deepEqual(await allRecords(s.dir), range(105));
        assert.equal((await verifyStore(s.dir, { publicKey: s.publicKey })).ok, true);
      });
    }
  });

  it('refuses to open over a changed byte, and verify names the frame', async () => {
    const s = await sealedStore(100);
    const [name] = segmentFiles(s.dir);
    const file = path.join(s.dir, name!);
    const bytes = readFileSync(file);
    bytes[SEAL_HEADER_BYTES + FRAME_OVERHEAD + 10]! ^= 1; // in the first frame's ciphertext
    writeFileSync(file, bytes);
    await assert.rejects(
      openStore(s.dir, s.keyFile, { sealKey: s.key }),
      (err: Error) => err instanceof AuditCorruptError && /fails authentication/.test(err.message),
    );
    await withKey(s.dir, s.key, async () => {
      const report = await verifyStore(s.dir, { publicKey: s.publicKey });
      assert.equal(report.ok, false);
      assert.equal(report.failure?.reason, 'bad-line');
      assert.equal(report.failure?.file, name);
      assert.match(report.failure?.message ?? '', new RegExp(`the frame at offset ${SEAL_HEADER_BYTES} fails authentication`));
    });
  });

  it('detects a frame cut from the middle or swapped with another (each is bound to its offset)', async () => {
    const s = await sealedStore(150);
    const [name] = segmentFiles(s.dir);
    const file = path.join(s.dir, name!);
    const frames = (await pieces(file, s.key)).filter((p) => p.kind === 'plain');
    assert.ok(frames.length >= 3);
    const bytes = readFileSync(file);
    const [a, b, c] = frames as Extract<SealedPiece, { kind: 'plain' }>[];
    const cut = Buffer.concat([bytes.subarray(0, a!.end), bytes.subarray(b!.end)]);
    const swapped = Buffer.concat([
      bytes.subarray(0, a!.offset),
      bytes.subarray(b!.offset, b!.end),
      bytes.subarray(a!.offset, a!.end),
      bytes.subarray(c!.offset),
    ]);
    for (const edited of [cut, swapped]) {
      writeFileSync(file, edited);
      const got = await pieces(file, s.key);
      assert.equal(got.at(-1)?.kind, 'damaged');
      await assert.rejects(openStore(s.dir, s.keyFile, { sealKey: s.key }), AuditCorruptError);
    }
  });

  it('cuts a failed write back to the last whole frame', async () => {
    const t = tempRoot();
    const key = randomBytes(32);
    const io = new RecordingIo();
    const store = await openStore(t.dir, t.keyFile, { sealKey: key, io, durability: 'strict' });
    await appendMany(store, 0, 20);
    io.failWrites = { code: 'ENOSPC', partial: true };
    await assert.rejects(appendMany(store, 20, 5));
    io.failWrites = undefined;
    await appendMany(store, 20, 5);
    await store.close();
    await withKey(t.dir, key, async () => {
      assert.deepEqual(await allRecords(t.dir), range(25));
      assert.equal((await verifyStore(t.dir, { publicKey: store.publicKey })).ok, true);
    });
  });

  it('continues a segment begun in clear in clear, and seals the next one', async () => {
    const t = tempRoot();
    const plain = await openStore(t.dir, t.keyFile);
    await appendMany(plain, 0, 40);
    await plain.close();
    const key = randomBytes(32);
    const sealed = await openStore(t.dir, t.keyFile, { sealKey: key, maxSegmentBytes: 4096 });
    for (let i = 40; i < 120; i += 20) await appendMany(sealed, i, 20);
    await sealed.close();
    const segments = segmentFiles(t.dir);
    assert.ok(segments.length > 1);
    assert.equal(readFileSync(path.join(t.dir, segments[0]!)).subarray(0, 7).toString(), '{"seq":');
    assert.equal(
      readFileSync(path.join(t.dir, segments.at(-1)!))
        .subarray(0, 8)
        .toString(),
      'PGWSEAL1',
    );
    await withKey(t.dir, key, async () => {
      assert.deepEqual(await allRecords(t.dir), range(120));
      assert.equal((await verifyStore(t.dir, { publicKey: sealed.publicKey })).ok, true);
    });
  });

  it('retention deletes whole old sealed segments; what remains verifies and reopens', async () => {
    const DAY = 24 * 3600 * 1000;
    const T0 = Date.UTC(2025, 0, 1);
    const t = tempRoot();
    const key = randomBytes(32);
    let clock = T0;
    const store = await openStore(t.dir, t.keyFile, { sealKey: key, now: () => clock, maxSegmentAgeMs: DAY, checkpointEvery: 30 });
    for (const day of [0, 2, 4]) {
      clock = T0 + day * DAY;
      await appendMany(store, day * 50, 100);
    }
    assert.deepEqual(segmentFiles(t.dir), ['segment-000001.log', 'segment-000002.log', 'segment-000003.log']);
    const result = await store.applyRetention(new Date(T0 + 3 * DAY));
    assert.deepEqual(result.deleted, ['segment-000001.log', 'segment-000002.log', 'checkpoints-000001.log', 'checkpoints-000002.log']);
    assert.equal(result.firstSeq, 201);
    await store.close();
    await withKey(t.dir, key, async () => {
      assert.deepEqual(await allRecords(t.dir), range(300).slice(200));
      const report = await verifyStore(t.dir, { publicKey: store.publicKey });
      assert.equal(report.ok, true, report.failure?.message);
      assert.equal(report.firstSeq, 201);
    });
    const again = await openStore(t.dir, t.keyFile, { sealKey: key, now: () => clock });
    assert.equal((await again.append({ type: 'after-retention' })).seq, 301);
    await again.close();
  });

  it('reads any cut or changed sealed file as frames, then torn or damaged, never throwing', async () => {
    const storeKey = randomBytes(32);
    const file = path.join(tempRoot().root, 'segment-000001.log');
    const header = sealHeader();
    const key = fileKey(storeKey, header, file);
    const parts: Buffer[] = [header];
    let at = header.length;
    for (const text of ['{"a":1}\n', '{"b":2}\n{"c":3}\n', 'x'.repeat(3000)]) {
      const frame = sealFrame(key, at, Buffer.from(text));
      parts.push(frame);
      at += frame.length;
    }
    const whole = Buffer.concat(parts);
    await fc.assert(
      fc.asyncProperty(fc.nat(whole.length - 1), fc.option(fc.tuple(fc.nat(whole.length - 1), fc.integer({ min: 1, max: 255 }))), async (cutAt, flip) => {
        const bytes = Buffer.from(whole.subarray(0, Math.max(cutAt, 8)));
        if (flip && flip[0] < bytes.length) bytes[flip[0]]! ^= flip[1];
        writeFileSync(file, bytes);
        const got = await pieces(file, storeKey);
        // Read frame by frame from the file, or from its bytes in memory: the same pieces.
        assert.deepEqual(got, [...openSealed(bytes, storeKey, file)]);
        const last = got.at(-1);
        // Only the last piece may be torn or damaged; the frames before it are the originals.
        for (const p of got.slice(0, -1)) assert.equal(p.kind, 'plain');
        if (!flip || flip[0] >= bytes.length) {
          assert.notEqual(last?.kind, 'damaged'); // a cut alone is always torn, never damage
        }
      }),
      { numRuns: 300 },
    );
    truncateSync(file, 0);
  });
});
