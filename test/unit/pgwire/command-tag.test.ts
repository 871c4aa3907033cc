// CommandComplete tags: the decoder reads a counted command and its row count from the bytes
// (backend-decoder.ts countedTag) and decodes any other tag; both must give what splitting the
// decoded tag gives (the reference below is the decoder's string path, written out).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BackendDecoder, type BackendEvent } from '../../../src/pgwire/observer/index.js';

const COUNTED = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY', 'FETCH', 'MOVE']);

function expected(tag: string, dataRows: number): BackendEvent {
  const whole: BackendEvent = { type: 'commandComplete', tag, dataRows, copyBytes: 0 };
  const space = tag.lastIndexOf(' ');
  if (space < 0 || space === tag.length - 1) return whole;
  let rows = 0;
  for (let i = space + 1; i < tag.length; i++) {
    const d = tag.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return whole;
    rows = rows * 10 + d;
  }
  let command = tag.slice(0, space);
  if (command === 'INSERT 0' || command.startsWith('INSERT ')) command = 'INSERT';
  return COUNTED.has(command) ? { type: 'commandComplete', tag: command, rows, dataRows, copyBytes: 0 } : whole;
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** The events of a DataRow then a CommandComplete whose body is `tag` (its NUL added). */
function decode(tag: Buffer): BackendEvent[] {
  const events: BackendEvent[] = [];
  const d = new BackendDecoder({ onEvent: (e) => events.push(e) });
  d.push(Buffer.concat([message('D', Buffer.from([0, 0])), message('C', Buffer.concat([tag, Buffer.from([0])]))]));
  return events;
}

const piece = fc.constantFrom(
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'COPY',
  'FETCH',
  'MOVE',
  'CREATE TABLE',
  'BEGIN',
  'select',
  'SELECTS',
  'INSERTX',
  ' ',
  '  ',
  '0',
  '1',
  '42',
  '007',
  '99999999999999999999',
  'x',
  '-',
  'é',
  '\u00a0',
  '\uffff',
);

describe('CommandComplete tags', () => {
  it('hand-picked tags', () => {
    const cases: [string, BackendEvent][] = [
      ['SELECT 1', { type: 'commandComplete', tag: 'SELECT', rows: 1, dataRows: 1, copyBytes: 0 }],
      ['INSERT 0 5', { type: 'commandComplete', tag: 'INSERT', rows: 5, dataRows: 1, copyBytes: 0 }],
      ['INSERT 5', { type: 'commandComplete', tag: 'INSERT', rows: 5, dataRows: 1, copyBytes: 0 }],
      ['INSERT x 5', { type: 'commandComplete', tag: 'INSERT', rows: 5, dataRows: 1, copyBytes: 0 }],
      ['COPY 12', { type: 'commandComplete', tag: 'COPY', rows: 12, dataRows: 1, copyBytes: 0 }],
      ['SELECT ', { type: 'commandComplete', tag: 'SELECT ', dataRows: 1, copyBytes: 0 }],
      ['SELECT', { type: 'commandComplete', tag: 'SELECT', dataRows: 1, copyBytes: 0 }],
      ['SELECT 1x', { type: 'commandComplete', tag: 'SELECT 1x', dataRows: 1, copyBytes: 0 }],
      ['CREATE TABLE', { type: 'commandComplete', tag: 'CREATE TABLE', dataRows: 1, copyBytes: 0 }],
      ['SELECTS 3', { type: 'commandComplete', tag: 'SELECTS 3', dataRows: 1, copyBytes: 0 }],
      ['', { type: 'commandComplete', tag: '', dataRows: 1, copyBytes: 0 }],
    ];
    for (const [tag, event] of cases) assert.deepEqual(decode(Buffer.from(tag)), [event], JSON.stringify(tag));
  });

  it('any tag: the same event as splitting the decoded tag (bytes read as UTF-8, invalid ones too)', () => {
    const text = fc.array(piece, { maxLength: 6 }).map((p) => Buffer.from(p.join('')));
    const bytes = fc.uint8Array({ maxLength: 12 }).map((b) => Buffer.from(b.filter((x) => x !== 0)));
    const mixed = fc.tuple(text, bytes, text).map(([a, b, c]) => Buffer.concat([a, b, c]));
    fc.assert(
      fc.property(fc.oneof(text, mixed), (tag) => {
        assert.deepEqual(decode(tag), [expected(tag.toString('utf8'), 1)]);
      }),
      { numRuns: 5000 },
    );
  });
});
