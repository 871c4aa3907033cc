import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageReader, StartupReader, type WireMessage } from '../../../src/pgwire/reader.js';
import { ProtocolError } from '../../../src/pgwire/protocol-error.js';
import { saslResponse, sslRequest, startupMessage, terminate } from '../../../src/pgwire/frontend.js';

function message(type: string, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const out = Buffer.alloc(5 + b.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

/** Feeds `stream` cut at the given sizes (cycled), draining after every push. */
function feed(reader: MessageReader, stream: Buffer, sizes: number[]): WireMessage[] {
  const out: WireMessage[] = [];
  let i = 0;
  for (let pos = 0; pos < stream.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    reader.push(stream.subarray(pos, pos + n));
    pos += n;
    for (const m of reader) out.push(m);
  }
  return out;
}

const plain = (ms: WireMessage[]): Array<[string, string]> => ms.map((m) => [m.type, m.body.toString('hex')]);

function isProtocolError(message: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.sqlstate, '08P01');
    assert.equal(err.message, message);
    return true;
  };
}

describe('MessageReader', () => {
  const messages = [
    message('p', 'SCRAM-SHA-256\0\0\0\0\x05hello'),
    message('Q', ''),
    message('p', Buffer.alloc(5000, 0xab)), // larger than the coalescing threshold
    message('X', ''),
    message('d', Buffer.alloc(40000, 1)),
  ];
  const stream = Buffer.concat(messages);
  const expected = messages.map((m) => [m.toString('latin1', 0, 1), m.subarray(5).toString('hex')]);

  it('returns messages from one chunk as zero-copy views', () => {
    const r = new MessageReader();
    r.push(stream);
    const out = [...r];
    assert.deepEqual(plain(out), expected);
    assert.equal(out[0]!.body.buffer, stream.buffer);
    assert.equal(r.next(), null);
    assert.equal(r.buffered, 0);
  });

  it('gives the same messages fed byte by byte', () => {
    assert.deepEqual(plain(feed(new MessageReader(), stream, [1])), expected);
  });

  it('gives the same messages for odd chunk splits', () => {
    for (const sizes of [[2], [3, 7], [4, 1, 6], [5], [13, 4096, 1], [4999, 2], [8191, 3, 65536]]) {
      assert.deepEqual(plain(feed(new MessageReader(), stream, sizes)), expected, `sizes ${sizes.join(',')}`);
    }
  });

  it('accepts a message of exactly the maximum length and rejects one byte more', () => {
    const r = new MessageReader({ maxLength: 100 });
    r.push(message('p', Buffer.alloc(96)));
    assert.equal(r.next()?.body.length, 96);
    const r2 = new MessageReader({ maxLength: 100 });
    r2.push(message('p', Buffer.alloc(97)).subarray(0, 5)); // the header alone is enough to refuse
    assert.throws(() => r2.next(), isProtocolError('message length 101 exceeds the limit of 100 bytes'));
  });

  it('defaults to a 1 MiB limit', () => {
    const r = new MessageReader();
    const header = Buffer.from([0x70, 0x00, 0x10, 0x00, 0x01]); // length 1048577
    r.push(header);
    assert.throws(() => r.next(), isProtocolError('message length 1048577 exceeds the limit of 1048576 bytes'));
  });

  it('rejects lengths below 4, also when the header is split', () => {
    for (const len of [3, 0, -1, -2147483648]) {
      const h = Buffer.alloc(5);
      h.write('Q');
      h.writeInt32BE(len, 1);
      const r = new MessageReader();
      r.push(h.subarray(0, 2));
      assert.equal(r.next(), null);
      r.push(h.subarray(2));
      assert.throws(() => r.next(), isProtocolError(`invalid message length: ${len}`));
      // the reader stays failed
      assert.throws(() => r.next(), ProtocolError);
      assert.throws(() => r.push(Buffer.from('x')), ProtocolError);
    }
  });

  it('holds only bytes that arrived, not what a header announces', () => {
    const r = new MessageReader();
    const h = Buffer.alloc(5);
    h.write('p');
    h.writeInt32BE(1024 * 1024, 1);
    r.push(h);
    assert.equal(r.next(), null);
    r.push(Buffer.alloc(10));
    assert.equal(r.next(), null);
    assert.equal(r.buffered, 15);
  });

  it('refuses to pile up input the caller does not drain beyond one maximum-size message', () => {
    const r = new MessageReader({ maxLength: 64 });
    const m = message('Q', 'x'.repeat(20));
    r.push(m);
    r.push(m);
    r.push(m); // 75 unread bytes now
    assert.throws(() => r.push(m), isProtocolError('too much unprocessed input'));
    assert.ok(r.buffered <= 64 + 1 + m.length);
  });

  it('rest() hands over a partial message and unread bytes in order', () => {
    const r = new MessageReader();
    const first = message('p', 'abc');
    const tail = Buffer.concat([message('Q', 'select 1\0'), terminate()]);
    r.push(Buffer.concat([first, tail.subarray(0, 7)]));
    assert.equal(r.next()?.body.toString(), 'abc');
    assert.equal(r.next(), null); // 7 bytes of a Query held as a partial message
    r.push(tail.subarray(7, 9));
    assert.deepEqual(r.rest(), tail.subarray(0, 9));
    assert.equal(r.buffered, 0);
    assert.deepEqual(r.rest(), Buffer.alloc(0));
  });

  it('rest() after a complete message returns the unread remainder of the chunk', () => {
    const r = new MessageReader();
    r.push(Buffer.concat([saslResponse(Buffer.from('x')), Buffer.from('relay bytes')]));
    assert.equal(r.next()?.type, 'p');
    assert.equal(r.rest().toString(), 'relay bytes');
  });
});

describe('StartupReader', () => {
  it('yields whole packets for SSLRequest then StartupMessage, byte by byte', () => {
    const a = sslRequest();
    const b = startupMessage({ user: 'u', database: 'd' });
    const stream = Buffer.concat([a, b]);
    const r = new StartupReader();
    const out: Buffer[] = [];
    for (const byte of stream) {
      r.push(Buffer.from([byte]));
      for (const p of r) out.push(p);
    }
    assert.deepEqual(out, [a, b]);
  });

  it('leaves the bytes after the startup packet for rest() (e.g. a TLS ClientHello)', () => {
    const r = new StartupReader();
    r.push(Buffer.concat([sslRequest(), Buffer.from([0x16, 0x03, 0x01])]));
    assert.deepEqual(r.next(), sslRequest());
    assert.deepEqual(r.rest(), Buffer.from([0x16, 0x03, 0x01]));
  });

  it('rejects lengths below 8 or above 10000 (configurable)', () => {
    for (const len of [7, 4, 0, -8, 10001]) {
      const r = new StartupReader();
      const h = Buffer.alloc(4);
      h.writeInt32BE(len);
      r.push(h);
      assert.throws(() => r.next(), isProtocolError('invalid length of startup packet'));
    }
    const r = new StartupReader({ maxLength: 20 });
    r.push(Buffer.from('00000015', 'hex'));
    assert.throws(() => r.next(), isProtocolError('invalid length of startup packet'));
    const ok = new StartupReader();
    const p = Buffer.alloc(10000);
    p.writeInt32BE(10000);
    ok.push(p.subarray(0, 4000));
    assert.equal(ok.next(), null);
    ok.push(p.subarray(4000));
    assert.equal(ok.next()?.length, 10000);
  });
});
