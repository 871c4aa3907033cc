// Property-based fuzzing of everything that reads untrusted bytes before authentication: the
// parsers must return a value or throw ProtocolError, never another exception, and the readers
// must keep their memory bound whatever the input and however it is cut.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseStartupPacket } from '../../../src/pgwire/startup.js';
import { MessageReader, StartupReader } from '../../../src/pgwire/reader.js';
import { ProtocolError } from '../../../src/pgwire/protocol-error.js';
import { cancelRequest, saslInitialResponse, saslResponse, startupMessage, passwordMessage, sslRequest } from '../../../src/pgwire/frontend.js';
import { parsePasswordMessage, parseSASLInitialResponse, parseSASLResponse } from '../../../src/pgwire/parse-frontend.js';
import { parseAuthentication, parseBackendKeyData, parseErrorOrNotice, parseParameterStatus, parseReadyForQuery } from '../../../src/pgwire/parse-backend.js';

const RUNS = { numRuns: 2000 };

/** Runs `fn`; any exception other than ProtocolError fails the property. */
function onlyProtocolErrors(fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    assert.match(err.sqlstate, /^(08P01|0A000|28000)$/);
  }
  return true;
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
const text = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !s.includes('\0'));

const validStartup = fc
  .tuple(
    text.filter((s) => s !== ''),
    fc.dictionary(
      text.filter((s) => s !== '' && s !== 'user'),
      text,
      { maxKeys: 8 },
    ),
  )
  .map(([user, params]) => startupMessage({ user, ...params }));

const validStartupPhase = fc.oneof(
  validStartup,
  fc.constant(sslRequest()),
  fc.tuple(fc.integer(), fc.integer({ min: 4, max: 256 })).map(([pid, n]) => cancelRequest(pid, Buffer.alloc(n, 1))),
);

const mutation = fc.record({
  op: fc.constantFrom('set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
});

function mutate(input: Buffer, mutations: ReadonlyArray<{ op: string; at: number; byte: number }>): Buffer {
  let out = Buffer.from(input);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    if (m.op === 'set' && at < out.length) out[at] = m.byte;
    else if (m.op === 'insert') out = Buffer.concat([out.subarray(0, at), Buffer.from([m.byte]), out.subarray(at)]);
    else if (m.op === 'delete') out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1)]);
    else if (m.op === 'truncate') out = out.subarray(0, at);
  }
  return out;
}

/** Random bytes behind a correct length word, so parsing gets past the length check. */
const framedRandom = fc.tuple(fc.constantFrom(196608, 131072, 80877102, 80877103, 262144), bytes(120)).map(([code, body]) => {
  const p = Buffer.alloc(8 + body.length);
  p.writeInt32BE(p.length, 0);
  p.writeUInt32BE(code, 4);
  body.copy(p, 8);
  return p;
});

describe('fuzz: parseStartupPacket', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(bytes(300), (b) => onlyProtocolErrors(() => parseStartupPacket(b))),
      RUNS,
    );
  });

  it('random bodies behind a valid length word and code', () => {
    fc.assert(
      fc.property(framedRandom, (b) => onlyProtocolErrors(() => parseStartupPacket(b))),
      RUNS,
    );
  });

  it('mutated valid packets', () => {
    fc.assert(
      fc.property(validStartupPhase, fc.array(mutation, { minLength: 1, maxLength: 4 }), (p, ms) =>
        onlyProtocolErrors(() => parseStartupPacket(mutate(p, ms))),
      ),
      RUNS,
    );
  });

  it('valid packets always parse', () => {
    fc.assert(
      fc.property(validStartupPhase, (p) => parseStartupPacket(p) !== null),
      RUNS,
    );
  });
});

/** Cuts `stream` into chunks of the given sizes (cycled). */
function chunks(stream: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0, i = 0; pos < stream.length; i++) {
    const n = 1 + (sizes[i % sizes.length]! % 700);
    out.push(stream.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

const validMessages = fc
  .array(
    fc.oneof(
      bytes(200).map((d) => saslResponse(d)),
      text.map((t) => passwordMessage(t)),
      bytes(60).map((d) => saslInitialResponse('SCRAM-SHA-256', d)),
    ),
    { maxLength: 8 },
  )
  .map((ms) => Buffer.concat(ms));

describe('fuzz: readers', () => {
  const MAX = 512;
  const maxChunk = 700;

  it('MessageReader: any input, any split: messages or ProtocolError, memory bounded', () => {
    const stream = fc.oneof(
      bytes(3000),
      validMessages,
      fc.tuple(validMessages, fc.array(mutation, { maxLength: 3 })).map(([s, m]) => mutate(s, m)),
    );
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), (s, sizes) => {
        const reader = new MessageReader({ maxLength: MAX });
        return onlyProtocolErrors(() => {
          for (const c of chunks(s, sizes)) {
            reader.push(c);
            assert.ok(reader.buffered <= MAX + 1 + maxChunk, `buffered ${reader.buffered}`);
            for (const m of reader) {
              assert.ok(m.body.length <= MAX - 4);
            }
            assert.ok(reader.buffered <= MAX + 1, `after draining ${reader.buffered}`);
          }
        });
      }),
      RUNS,
    );
  });

  it('MessageReader: the split never changes the messages', () => {
    fc.assert(
      fc.property(validMessages, fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), (s, sizes) => {
        const whole = new MessageReader();
        whole.push(s);
        const expected = [...whole].map((m) => m.type + m.body.toString('hex'));
        const split = new MessageReader();
        const got: string[] = [];
        for (const c of chunks(s, sizes)) {
          split.push(c);
          for (const m of split) got.push(m.type + m.body.toString('hex'));
        }
        assert.deepEqual(got, expected);
        assert.equal(split.buffered, 0);
      }),
      RUNS,
    );
  });

  it('StartupReader: any input, any split: packets or ProtocolError, memory bounded', () => {
    const stream = fc.oneof(
      bytes(2000),
      fc.tuple(validStartupPhase, fc.array(mutation, { maxLength: 3 })).map(([p, m]) => mutate(p, m)),
    );
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), (s, sizes) => {
        const reader = new StartupReader({ maxLength: 600 });
        return onlyProtocolErrors(() => {
          for (const c of chunks(s, sizes)) {
            reader.push(c);
            for (const p of reader) parseStartupPacket(p, { maxLength: 600 });
            assert.ok(reader.buffered <= 600, `after draining ${reader.buffered}`);
          }
        });
      }),
      RUNS,
    );
  });
});

describe('fuzz: message body parsers', () => {
  const parsers: Array<[string, (b: Buffer) => unknown]> = [
    ['parseSASLInitialResponse', (b) => parseSASLInitialResponse(b)],
    ['parseSASLResponse', (b) => parseSASLResponse(b)],
    ['parsePasswordMessage', (b) => parsePasswordMessage(b)],
    ['parseAuthentication', (b) => parseAuthentication(b)],
    ['parseErrorOrNotice', (b) => parseErrorOrNotice(b)],
    ['parseBackendKeyData', (b) => parseBackendKeyData(b)],
    ['parseParameterStatus', (b) => parseParameterStatus(b)],
    ['parseReadyForQuery', (b) => parseReadyForQuery(b)],
  ];
  for (const [name, parse] of parsers) {
    it(`${name}: random and mutated bodies`, () => {
      const seed = fc.oneof(
        bytes(300),
        fc
          .tuple(
            fc.constantFrom(
              saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')).subarray(5),
              Buffer.from('SFATAL\0VFATAL\0C28000\0Mm\0\0'),
              Buffer.from('0000000a534352414d2d5348412d3235360000', 'hex'),
              Buffer.from('pw\0'),
            ),
            fc.array(mutation, { maxLength: 4 }),
          )
          .map(([b, m]) => mutate(b, m)),
      );
      fc.assert(
        fc.property(seed, (b) => onlyProtocolErrors(() => parse(b))),
        RUNS,
      );
    });
  }
});
