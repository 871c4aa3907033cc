// The writer's byte lines are the lines and hashes record.ts defines, whatever the event's text.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { RecordLines } from '../../../src/audit/store/record-lines.js';
import { formatRecordLine, recordHashHex, ZERO_HASH } from '../../../src/audit/store/record.js';

function expected(events: readonly string[], time: string, firstSeq = 1, first = ZERO_HASH): { text: string; hashes: string[] } {
  let prev = first;
  let text = '';
  const hashes: string[] = [];
  events.forEach((e, i) => {
    const hash = recordHashHex(firstSeq + i, time, prev, e);
    text += formatRecordLine(firstSeq + i, time, prev, hash, e);
    hashes.push(hash);
    prev = hash;
  });
  return { text, hashes };
}

function encoded(lines: RecordLines, events: readonly string[], time: string, firstSeq = 1, first = ZERO_HASH): { bytes: Buffer; hashes: string[] } {
  lines.reset();
  let prev = first;
  const hashes = events.map((e, i) => (prev = lines.append(firstSeq + i, time, prev, e)));
  return { bytes: lines.bytes(), hashes };
}

it('RecordLines: the same bytes and hashes as formatRecordLine and recordHashHex', () => {
  const lines = new RecordLines();
  const time = '2026-12-05T02:00:00.000Z';
  const big = `{"text":"${'é😀x'.repeat(40_000)}"}`; // larger than both buffers at the start
  for (const events of [['{}'], ['{"a":"b"}', '{"text":"ünïcødé \\u2028 😀"}', big, '{"n":1}'], [big, big]]) {
    const want = expected(events, time);
    const got = encoded(lines, events, time);
    assert.equal(got.bytes.toString('utf8'), want.text);
    assert.ok(got.bytes.equals(Buffer.from(want.text)));
    assert.deepEqual(got.hashes, want.hashes);
  }
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 8 }), (texts) => {
      const events = texts.map((t) => JSON.stringify({ text: t }));
      const want = expected(events, time);
      const got = encoded(lines, events, time);
      assert.ok(got.bytes.equals(Buffer.from(want.text)));
      assert.deepEqual(got.hashes, want.hashes);
    }),
  );
});

it('RecordLines: a batch is a copy, not changed by the next one', () => {
  const lines = new RecordLines();
  const first = encoded(lines, ['{"a":1}'], '2026-12-05T02:00:00.000Z').bytes;
  const copy = Buffer.from(first);
  encoded(lines, ['{"b":2}'], '2026-12-05T02:00:00.001Z');
  assert.ok(first.equals(copy));
});

it('RecordLines: any seq and time, and a prev or time that is not ASCII (never so in the writer: the slow way), as formatRecordLine', () => {
  const lines = new RecordLines();
  const events = ['{"a":1}', '{"text":"é😀"}', '{}'];
  const cases: [number, string, string][] = [
    [1, '2026-12-05T02:00:00.000Z', ZERO_HASH],
    [9, '2026-12-05T02:00:00.000Z', 'f'.repeat(64)],
    [99_999, '+275760-09-13T00:00:00.000Z', 'a'.repeat(64)],
    [Number.MAX_SAFE_INTEGER - 2, '1970-01-01T00:00:00.000Z', '0123456789abcdef'.repeat(4)],
    [5, '2026-12-05T02:00:00.000Z', 'é'.repeat(64)],
    [5, '2026-12-05T02:00:00.000Zé', 'b'.repeat(64)],
    [5, '2026-12-05T02:00:00.000Z', '\u{1F600}'.repeat(32)],
  ];
  for (const [seq, time, prev] of cases) {
    const want = expected(events, time, seq, prev);
    const got = encoded(lines, events, time, seq, prev);
    assert.ok(got.bytes.equals(Buffer.from(want.text)), `${seq} ${time} ${prev}`);
    assert.deepEqual(got.hashes, want.hashes);
  }
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 8 }),
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      fc.array(fc.jsonValue(), { minLength: 1, maxLength: 6 }),
      (seq, ms, values) => {
        const events = values.map((v) => JSON.stringify({ v }));
        const time = new Date(ms).toISOString();
        const want = expected(events, time, seq);
        const got = encoded(lines, events, time, seq);
        assert.ok(got.bytes.equals(Buffer.from(want.text)));
        assert.deepEqual(got.hashes, want.hashes);
      },
    ),
  );
});

it('RecordLines: a batch far larger than the buffer, then small ones, each its own bytes', () => {
  const lines = new RecordLines();
  const time = '2026-12-05T02:00:00.000Z';
  const many = Array.from({ length: 3000 }, (_, i) => `{"i":${i},"pad":"${'x'.repeat(i % 300)}"}`);
  const big = encoded(lines, many, time);
  const want = expected(many, time);
  const small = encoded(lines, ['{"s":1}'], time);
  assert.ok(big.bytes.equals(Buffer.from(want.text)));
  assert.deepEqual(big.hashes, want.hashes);
  assert.ok(small.bytes.equals(Buffer.from(expected(['{"s":1}'], time).text)));
});
