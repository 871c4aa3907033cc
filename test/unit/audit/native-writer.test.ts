// The writer's native code (native/relay/src/chain.rs, seal.rs) against the JavaScript it
// replaces: two stores fed the same events at the same times write the same bytes, roll at the
// same records and reach the same Merkle roots; a batch the native chain refuses is chained in
// JavaScript, with the same bytes again; a frame sealed natively is seal.ts's, byte for byte.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { nativeWriter } from '../../../src/audit/store/native-writer.js';
import { holdStoreKey } from '../../../src/audit/store/seal-keys.js';
import { fileKey, sealedPlaintext, sealFrame, sealHeader } from '../../../src/audit/store/seal.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { checkpointFiles, event, openStore, recordRun, segmentFiles, tempRoot } from './helpers.js';

const skip = nativeWriter() ? false : 'the native addon is not built (scripts/build-native.sh)';

/** Events of every kind the writer takes: objects, canonical bytes and runs of them (the relay's records), text
 * outside ASCII and control characters; in batches of 1 to 40; at `times` (ms). */
async function fill(native: boolean, times: (i: number) => number, sealKey?: Buffer) {
  const t = tempRoot();
  let i = 0;
  const store = await openStore(t.dir, t.keyFile, {
    native,
    now: () => times(i),
    maxSegmentBytes: 8 * 1024,
    checkpointEvery: 37,
    durability: 'strict',
    ...(sealKey ? { sealKey } : {}),
  });
  for (let batch = 1; i < 400; batch = (batch % 40) + 1) {
    const appends: Promise<unknown>[] = [];
    for (let k = 0; k < batch && i < 400; k++, i++) {
      if (i % 3 === 0) {
        const bytes = Buffer.from(`{"text":"SELECT ${i} \\u0001 é ✓ 🐘","type":"statement"}`);
        assert.equal(typeof store.enqueueCanonical(bytes), 'number');
      } else if (i % 7 === 1 && k + 3 <= batch && i + 3 <= 400) {
        // A run of three records, as the relay hands them.
        const run = recordRun(...[0, 1, 2].map((j) => `{"run":${i + j},"text":"SELECT é ${i + j}","type":"statement"}`));
        assert.ok(store.enqueueCanonicalRun(run, 3) > 0);
        i += 2;
        k += 2;
      } else {
        appends.push(store.append({ ...event(i), note: `row ${i}: naïve "quoted"\ttab` }));
      }
    }
    await Promise.all(appends);
  }
  await store.checkpoint();
  await store.close();
  return { dir: t.dir, publicKey: store.publicKey };
}

function files(dir: string, names: string[]): Buffer[] {
  return names.map((n) => readFileSync(path.join(dir, n)));
}

/** The checkpoints' fields a chain decides (not their times or signatures). */
function roots(dir: string): string[] {
  return checkpointFiles(dir).flatMap((n) =>
    readFileSync(path.join(dir, n), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const c = JSON.parse(l) as { size: number; root: string; frontier: string[]; lastHash: string };
        return `${c.size} ${c.root} ${c.frontier.join(',')} ${c.lastHash}`;
      }),
  );
}

describe('the native hash chain', { skip }, () => {
  for (const [what, times] of [
    ['times within a few milliseconds', (i: number) => Date.UTC(2026, 11, 6, 7, 0, 0, 0) + Math.floor(i / 7)],
    // Past year 9999 toISOString writes "+010000-...": the native chain refuses it, JavaScript chains it.
    ['times past year 9999', (i: number) => Date.UTC(10000, 0, 1) + i],
  ] as const) {
    it(`writes the same segments and roots as the JavaScript chain (${what})`, async () => {
      const js = await fill(false, times);
      const native = await fill(true, times);
      const segments = segmentFiles(js.dir);
      assert.ok(segments.length > 3, `${segments.length} segments`);
      assert.deepEqual(segmentFiles(native.dir), segments);
      assert.deepEqual(files(native.dir, segments), files(js.dir, segments));
      assert.deepEqual(roots(native.dir), roots(js.dir));
      if (what.startsWith('times past')) return; // (verify takes checkpoint times up to year 9999)
      const report = await verifyStore(native.dir, { publicKey: native.publicKey });
      assert.equal(report.ok, true, JSON.stringify(report.failure));
      assert.equal(report.records, 400);
    });
  }

  it('seals a store whose plaintext is the JavaScript one, and frames as seal.ts does', async () => {
    const times = (i: number) => Date.UTC(2026, 11, 6, 7, 0, 0, 0) + i;
    const key = randomBytes(32);
    const js = await fill(false, times);
    const sealed = await fill(true, times, key);
    const release = holdStoreKey(sealed.dir, key);
    try {
      const segments = segmentFiles(js.dir);
      // Sealed segments hold 44 bytes more per frame (and 24 per file): they roll at other records.
      const plain = (dir: string) => Buffer.concat(segmentFiles(dir).map((n) => readFileSync(path.join(dir, n))));
      const opened = Buffer.concat(segmentFiles(sealed.dir).map((n) => sealedPlaintext(readFileSync(path.join(sealed.dir, n)), key, path.join(sealed.dir, n))));
      assert.ok(segments.length > 1);
      assert.deepEqual(opened, plain(js.dir));
      assert.equal((await verifyStore(sealed.dir, { publicKey: sealed.publicKey })).ok, true);
    } finally {
      release();
    }
    const file = '/x/segment-000007.log';
    const fk = fileKey(key, sealHeader(), file);
    for (const size of [1, 700, 100_000]) {
      const data = randomBytes(size);
      const nonce = randomBytes(12);
      const out = Buffer.alloc(size + 100);
      const n = nativeWriter()!.sealFrame(fk, nonce, 24 + size, data, out);
      assert.deepEqual(out.subarray(0, n), sealFrame(fk, 24 + size, data, nonce));
    }
    assert.throws(() => nativeWriter()!.sealFrame(fk, randomBytes(12), 24, Buffer.alloc(0), Buffer.alloc(100)), /sealFrame: a frame holds/);
    assert.throws(() => nativeWriter()!.sealFrame(fk, randomBytes(11), 24, Buffer.alloc(5), Buffer.alloc(100)), /a nonce is 12 bytes/);
  });

  it('refuses what is not a batch, naming the event', () => {
    const chain = nativeWriter()!;
    const frontier = Buffer.alloc(64 * 32, 7);
    const args = (events: string, ends: number[]) =>
      [
        Buffer.from(events),
        new Uint32Array(ends),
        new Float64Array(ends.length).fill(Date.now()),
        1,
        Buffer.alloc(32),
        frontier,
        0,
        Buffer.alloc(4096),
        Buffer.alloc(4096),
      ] as const;
    assert.throws(() => chain.chainRecords(...args('{}[]', [2, 4])), /chainRecords: event 1 is not a JSON object/);
    assert.throws(() => chain.chainRecords(...args('{}', [3])), /event 0 ends out of its buffer/);
    assert.equal(chain.chainRecords(...args('{}{}', [2, 4])) > 0, true);
  });
});
