// The native relay's skip-run records (gateway/native/addon.ts, 'observe'): a run of DataRow or
// CopyData messages arrives as one record `0x00, Int32 16, Int32 code, Int32 count, Int32 bytes`.
// The same session must give the same events whether its bytes are fed raw (the JavaScript
// relay) or as the addon delivers them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionObserver, type BackendEvent, type FrontendEvent } from '../../../src/pgwire/index.js';
import { errorResponse, readyForQuery } from '../../../src/pgwire/backend.js';
import { MessageWriter } from '../../../src/pgwire/message-writer.js';

const DATA_ROW = 0x44; // 'D'
const COPY_DATA = 0x64; // 'd'

function msg(type: string, build: (w: MessageWriter) => MessageWriter = (w) => w): Buffer {
  return build(new MessageWriter()).message(type);
}

function skipRecord(code: number, count: number, bytes: number): Buffer {
  const b = Buffer.alloc(17);
  b[0] = 0;
  b.writeInt32BE(16, 1);
  b.writeInt32BE(code, 5);
  b.writeInt32BE(count, 9);
  b.writeInt32BE(bytes, 13);
  return b;
}

/** What the addon hands over for whole messages: each run of DataRow/CopyData becomes a record
 * (split before bytes exceeds `maxRun`, as the contract says for 2^31-1). */
function asAddonDelivers(messages: readonly Buffer[], maxRun = 0x7fffffff): Buffer {
  const out: Buffer[] = [];
  let run: { code: number; count: number; bytes: number } | null = null;
  const flush = () => {
    if (run) out.push(skipRecord(run.code, run.count, run.bytes));
    run = null;
  };
  for (const m of messages) {
    const code = m[0]!;
    if (code === DATA_ROW || code === COPY_DATA) {
      if (run && (run.code !== code || run.bytes + m.length > maxRun)) flush();
      run ??= { code, count: 0, bytes: 0 };
      run.count++;
      run.bytes += m.length;
      continue;
    }
    flush();
    out.push(m);
  }
  flush();
  return Buffer.concat(out);
}

function record(skipRecords: boolean) {
  const front: FrontendEvent[] = [];
  const back: BackendEvent[] = [];
  const failures: string[] = [];
  const o = new SessionObserver([{ frontend: (e) => front.push(e), backend: (e) => back.push(e), failed: (r) => failures.push(r) }], { skipRecords });
  return { o, front, back, failures };
}

const row = (n: number) =>
  msg('D', (w) =>
    w
      .int16(1)
      .int32(String(n).length)
      .bytes(Buffer.from(String(n))),
  );
const copy = (s: string) => msg('d', (w) => w.bytes(Buffer.from(s)));

function session() {
  const client = [
    msg('Q', (w) => w.cstring('SELECT generate_series(1, 1000)')),
    msg('Q', (w) => w.cstring('COPY t FROM STDIN')),
    copy('1\tone\n'),
    copy('2\ttwo\n'),
    copy('3\tthree\n'),
    msg('c'),
    msg('Q', (w) => w.cstring('COPY t TO STDOUT')),
    msg('P', (w) => w.cstring('s1').cstring('SELECT $1').int16(0)),
    msg('B', (w) => w.cstring('').cstring('s1').int16(0).int16(1).int32(1).bytes(Buffer.from('7')).int16(0)),
    msg('E', (w) => w.cstring('').int32(0)),
    msg('S'),
    msg('X'),
  ];
  const rows = Array.from({ length: 1000 }, (_, i) => row(i));
  const server = [
    msg('T', (w) => w.int16(0)),
    ...rows,
    msg('C', (w) => w.cstring('SELECT 1000')),
    readyForQuery('I'),
    msg('G', (w) => w.int8(0).int16(0)),
    msg('C', (w) => w.cstring('COPY 3')),
    readyForQuery('I'),
    msg('H', (w) => w.int8(0).int16(0)),
    copy('1\tone\n'),
    copy('2\ttwo\n'),
    msg('c'),
    msg('C', (w) => w.cstring('COPY 2')),
    readyForQuery('I'),
    msg('1'),
    msg('2'),
    row(7),
    msg('C', (w) => w.cstring('SELECT 1')),
    errorResponse({ severity: 'ERROR', sqlstate: '42601', message: 'x' }),
    readyForQuery('E'),
  ];
  return { client, server };
}

describe('skip-run records of the native relay', () => {
  it('the same session gives the same events raw and as the addon delivers it', () => {
    const { client, server } = session();
    const raw = record(false);
    raw.o.fromClient(Buffer.concat(client));
    raw.o.fromServer(Buffer.concat(server));
    const native = record(true);
    native.o.fromClient(asAddonDelivers(client));
    native.o.fromServer(asAddonDelivers(server));
    assert.deepEqual(native.failures, []);
    assert.deepEqual(native.front, raw.front);
    assert.deepEqual(native.back, raw.back);
    const selected = raw.back.find((e) => e.type === 'commandComplete' && e.tag === 'SELECT');
    assert.deepEqual(selected, { type: 'commandComplete', tag: 'SELECT', rows: 1000, dataRows: 1000, copyBytes: 0 });
    assert.ok(raw.front.some((e) => e.type === 'copyData' && e.bytes === 20));
    assert.ok(raw.back.some((e) => e.type === 'commandComplete' && e.tag === 'COPY' && e.copyBytes === 12));
  });

  it('records split before 2^31-1 bytes, and byte by byte, count the same', () => {
    const { client, server } = session();
    const raw = record(false);
    raw.o.fromClient(Buffer.concat(client));
    raw.o.fromServer(Buffer.concat(server));
    const native = record(true);
    // Runs split every few messages (as a 2 GiB run would be), fed one byte at a time: the client
    // stream is fed in one piece so its copyData events (one per chunk) line up.
    native.o.fromClient(asAddonDelivers(client, 14));
    const s = asAddonDelivers(server, 40);
    for (let i = 0; i < s.length; i++) native.o.fromServer(s.subarray(i, i + 1));
    assert.deepEqual(native.failures, []);
    assert.deepEqual(native.back, raw.back);
    assert.deepEqual(
      native.front.filter((e) => e.type !== 'copyData'),
      raw.front.filter((e) => e.type !== 'copyData'),
    );
    const sum = (l: FrontendEvent[]) => l.reduce((n, e) => n + (e.type === 'copyData' ? e.bytes : 0), 0);
    assert.equal(sum(native.front), sum(raw.front));
  });

  it('a type 0x00 message is not a record unless the stream is the addon’s', () => {
    const raw = record(false);
    raw.o.fromClient(skipRecord(COPY_DATA, 1000, 1_000_000));
    raw.o.fromClient(msg('S'));
    assert.deepEqual(raw.front, [{ type: 'other', code: 0 }, { type: 'sync' }]);
    const bad = record(true);
    bad.o.fromServer(skipRecord(0x51, 1, 10));
    assert.equal(bad.failures.length, 1);
  });
});
