import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../../../src/audit/store/canonical-json.js';
import { EMPTY_ROOT, leafHash, MerkleFrontier, nodeHash } from '../../../src/audit/store/merkle.js';
import { sha256Short, SHORT_MAX } from '../../../src/audit/store/sha256-short.js';
import { formatRecordLine, parseRecordLine, recordHash, ZERO_HASH } from '../../../src/audit/store/record.js';
import { mth } from './helpers.js';

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();

describe('canonical JSON (RFC 8785 form)', () => {
  it('sorts keys by UTF-16 code units at every level, without whitespace', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ z: true, y: null }], é: 'x', Z: 2 }), '{"Z":2,"a":[{"y":null,"z":true}],"b":1,"é":"x"}');
    assert.equal(canonicalJson({ '\u{1F600}': 1, '\uFFFF': 2 }), '{"\u{1F600}":1,"\uFFFF":2}');
  });

  it('encodes numbers and strings as JSON.stringify, drops what it drops', () => {
    assert.equal(
      canonicalJson({ n: 1e21, m: -0, f: 0.1, s: 'a"\\\n\u2028', u: undefined, nan: NaN, d: new Date(0), a: [undefined] }),
      '{"a":[null],"d":"1970-01-01T00:00:00.000Z","f":0.1,"m":0,"n":1e+21,"nan":null,"s":"a\\"\\\\\\n\u2028"}',
    );
  });

  it('refuses bigint, cycles and deep nesting', () => {
    assert.throws(() => canonicalJson({ n: 1n }), /bigint/);
    const o: Record<string, unknown> = {};
    o.self = o;
    assert.throws(() => canonicalJson(o), /cyclic/);
    let deep: unknown = {};
    for (let i = 0; i < 70; i++) deep = { d: deep };
    assert.throws(() => canonicalJson(deep), /deep/);
  });

  it('is stable through a parse: canonical(parse(canonical(x))) === canonical(x)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalJson(v);
        assert.equal(canonicalJson(JSON.parse(c)), c);
      }),
      { numRuns: 500 },
    );
  });
});

describe('record hash', () => {
  it('is SHA-256 of the canonical JSON of {event, prev, seq, time}', () => {
    const ev = { user: 'alice', type: 'auth.succeeded' };
    const time = '2025-01-01T00:00:00.000Z';
    const expected = sha(canonicalJson({ seq: 1, time, prev: ZERO_HASH, event: ev }));
    assert.deepEqual(recordHash(1, time, ZERO_HASH, canonicalJson(ev)), expected);
    const line = formatRecordLine(1, time, ZERO_HASH, expected.toString('hex'), canonicalJson(ev));
    const parsed = parseRecordLine(line.slice(0, -1));
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.record.event, ev);
  });

  it('rejects a line that parses to the same record but is not byte-identical', () => {
    const ev = canonicalJson({ a: 1 });
    const time = '2025-01-01T00:00:00.000Z';
    const hash = recordHash(1, time, ZERO_HASH, ev).toString('hex');
    const line = formatRecordLine(1, time, ZERO_HASH, hash, ev).slice(0, -1);
    assert.equal(parseRecordLine(line.replace('"a":1', '"a": 1')).ok, false);
    assert.equal(parseRecordLine(line.replace('"a":1', '"a":1.0')).ok, false);
    const changed = parseRecordLine(line.replace('"a":1', '"a":2'));
    assert.ok(!changed.ok && changed.problem === 'hash-mismatch' && changed.seq === 1);
  });
});

describe('Merkle frontier (RFC 6962)', () => {
  it('gives the RFC 6962 root for every size 0..70, and resumes from a saved frontier', () => {
    const leaves = Array.from({ length: 70 }, (_, i) => sha(`record ${i}`));
    const f = MerkleFrontier.empty();
    const hex = MerkleFrontier.empty(); // as the writer feeds it: record hashes in hex
    assert.deepEqual(f.root(), EMPTY_ROOT);
    for (let n = 1; n <= leaves.length; n++) {
      f.append(leaves[n - 1]!);
      hex.appendHex(leaves[n - 1]!.toString('hex'));
      assert.deepEqual(f.root(), mth(leaves.slice(0, n)), `size ${n}`);
      assert.deepEqual(hex.root(), f.root(), `size ${n} (hex)`);
      assert.deepEqual(hex.hexes(), f.hexes());
      if (n === 37) {
        const resumed = MerkleFrontier.from(n, f.hexes());
        for (const l of leaves.slice(n)) resumed.append(l);
        assert.deepEqual(resumed.root(), mth(leaves));
      }
    }
    assert.throws(() => MerkleFrontier.from(5, [ZERO_HASH]), /frontier/);
  });

  it('hashes leaves and nodes as SHA-256 of 0x00 ‖ hash and 0x01 ‖ left ‖ right (the short-input SHA-256 against node:crypto)', () => {
    for (let n = 0; n <= SHORT_MAX - 1; n++) {
      const a = randomBytes(n);
      assert.deepEqual(
        sha256Short(n % 256, a),
        createHash('sha256')
          .update(Buffer.from([n % 256]))
          .update(a)
          .digest(),
        `${n + 1} bytes`,
      );
      const cut = Math.floor(n / 2);
      assert.deepEqual(
        sha256Short(7, a.subarray(0, cut), a.subarray(cut)),
        createHash('sha256')
          .update(Buffer.from([7]))
          .update(a)
          .digest(),
        `${n + 1} bytes in two parts`,
      );
    }
    assert.throws(() => sha256Short(0, Buffer.alloc(SHORT_MAX)), RangeError);
    const [l, r] = [sha('left'), sha('right')];
    assert.deepEqual(
      leafHash(l),
      createHash('sha256')
        .update(Buffer.from([0]))
        .update(l)
        .digest(),
    );
    assert.deepEqual(
      nodeHash(l, r),
      createHash('sha256')
        .update(Buffer.from([1]))
        .update(l)
        .update(r)
        .digest(),
    );
  });
});
