// The writer's byte lines are the lines and hashes record.ts defines, whatever the event's text.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { RecordLines } from '../../../src/audit/store/record-lines.js';
import { formatRecordLine, recordHashHex, ZERO_HASH } from '../../../src/audit/store/record.js';

function expected(events: readonly string[], time: string): { text: string; hashes: string[] } {
  let prev = ZERO_HASH;
  let text = '';
  const hashes: string[] = [];
  events.forEach((e, i) => {
    const hash = recordHashHex(i + 1, time, prev, e);
    text += formatRecordLine(i + 1, time, prev, hash, e);
    hashes.push(hash);
    prev = hash;
  });
  return { text, hashes };
}

function encoded(lines: RecordLines, events: readonly string[], time: string): { bytes: Buffer; hashes: string[] } {
  lines.reset();
  let prev = ZERO_HASH;
  const hashes = events.map((e, i) => (prev = lines.append(i + 1, time, prev, e)));
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
