// The per-record fast paths of audit logging: canonical JSON built on the caller's side from the
// event itself (canonicalJsonOfPlain, which must give canonicalJson's text or nothing), the Merkle
// frontier hashed natively from hex (the same roots as RFC 6962 written out), the hash helpers,
// the event bus without EventEmitter, and the millisecond-cached clock. Plus a store round trip
// mixing events canonicalized on the caller's side with events only the writer can canonicalize.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalJson, canonicalJsonOfPlain } from '../../../src/audit/store/canonical-json.js';
import { MerkleFrontier } from '../../../src/audit/store/merkle.js';
import { readRecords } from '../../../src/audit/store/read-records.js';
import { recordHash, recordHashHex } from '../../../src/audit/store/record.js';
import { sha256, sha256Hex, sha256Latin1 } from '../../../src/audit/store/sha256.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { EventBus, now } from '../../../src/events/bus.js';
import type { AnyEvent } from '../../../src/events/types.js';
import { mth, openStore, tempRoot } from './helpers.js';

/** A statement event as the gateway publishes it (keys in its order, not the canonical one). */
function statementEvent(i: number): Record<string, unknown> {
  return {
    type: 'statement',
    time: '2026-01-01T00:00:00.000Z',
    connection: { connId: '9b0d8925-70e2-4971-827f-63e98e01b0f5', clientAddress: '127.0.0.1', clientPort: 40000 + i, listener: 'public' },
    server: 'web-1',
    user: 'app',
    database: 'postgres',
    applicationName: 'pgbench',
    text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${i};`,
    class: 'READ',
    classes: ['READ'],
    commandTag: 'SELECT',
    objects: [{ kind: 'relation', name: 'pgbench_accounts' }],
    outcome: 'success',
    durationMs: 0.25 + i / 7,
    protocol: 'simple',
    rows: 1,
  };
}

describe('canonicalJsonOfPlain', () => {
  it('gives canonicalJson of every JSON value it accepts, and accepts plain data without index-like keys', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', '0', '10', '9', 'a', 'b', 'é', '\u{1F600}', 'type', 'toJSON'));
    const leaf = fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.constantFrom(undefined, Number.NaN, -0, Infinity, 1e21, '\u2028', 'a"\\\n'));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 6 })),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 8 }), (v) => {
        const fast = canonicalJsonOfPlain(v);
        if (fast !== undefined) assert.equal(fast, canonicalJson(v));
      }),
      { numRuns: 3000 },
    );
    const plainKey = fc.string().filter((k) => k !== '__proto__' && !/^[0-9]/.test(k));
    const plain = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 0 }),
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(plainKey, tie('v'), { maxKeys: 6 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(plainKey, plain, { maxKeys: 8 }), (v) => {
        assert.equal(canonicalJsonOfPlain(v), canonicalJson(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('serializes statement events canonically, shapes that share a first key each in their own order', () => {
    for (let i = 0; i < 50; i++) assert.equal(canonicalJsonOfPlain(statementEvent(i)), canonicalJson(statementEvent(i)));
    assert.equal(canonicalJsonOfPlain({ t: 1, b: 2, a: 3 }), '{"a":3,"b":2,"t":1}');
    assert.equal(canonicalJsonOfPlain({ t: 1, z: 2, c: 3 }), '{"c":3,"t":1,"z":2}');
    assert.equal(canonicalJsonOfPlain({ a: 1, b: { d: [1, { y: 2, x: 1 }], c: null } }), '{"a":1,"b":{"c":null,"d":[1,{"x":1,"y":2}]}}');
    // Dropped and nulled as JSON.stringify does.
    assert.equal(canonicalJsonOfPlain({ u: undefined, f: () => 1, s: Symbol('s'), n: Number.NaN, a: [undefined, () => 1] }), '{"a":[null,null],"n":null}');
    const sorted = { a: 1, b: 'x' };
    assert.equal(canonicalJsonOfPlain(sorted), '{"a":1,"b":"x"}');
    assert.deepEqual(sorted, { a: 1, b: 'x' }); // never changed
  });

  it('declines what it cannot vouch for: toJSON, class instances, index-like keys, __proto__, depth and cycles', () => {
    assert.equal(canonicalJsonOfPlain({ at: new Date(0) }), undefined);
    assert.equal(canonicalJsonOfPlain({ x: { toJSON: () => ({ b: 1, a: 2 }) } }), undefined);
    assert.equal(canonicalJsonOfPlain({ m: new Map() }), undefined);
    assert.equal(canonicalJsonOfPlain({ b: Buffer.from('x') }), undefined);
    assert.equal(canonicalJsonOfPlain({ b: 1, 10: 'x', 9: 'y' }), undefined);
    assert.equal(canonicalJsonOfPlain(JSON.parse('{"__proto__":{"x":1},"a":0}') as object), undefined);
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 70; i++) deep = { d: deep };
    assert.equal(canonicalJsonOfPlain(deep, 64), undefined);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    assert.equal(canonicalJsonOfPlain(cyclic), undefined);
    assert.equal(canonicalJsonOfPlain(Object.assign(Object.create(null) as object, { b: 1, a: 2 })), '{"a":2,"b":1}');
    assert.throws(
      () => canonicalJsonOfPlain({ n: 1n }),
      (e: unknown) => e instanceof TypeError && /BigInt/.test(e.message),
    );
  });
});

describe('hashes of the writer', () => {
  it('hex and latin1 SHA-256 and the record hash agree with createHash', () => {
    for (const data of ['', 'abc', 'é\u{1F600}', 'x'.repeat(1000)]) {
      const want = createHash('sha256').update(data).digest();
      assert.equal(sha256Hex(data), want.toString('hex'));
      assert.deepEqual(sha256(data), want);
      assert.equal(sha256Latin1(Buffer.from(data)), want.toString('latin1'));
    }
    const prev = sha256Hex('prev');
    assert.equal(recordHashHex(7, '2026-01-01T00:00:00.000Z', prev, '{"a":"é"}'), recordHash(7, '2026-01-01T00:00:00.000Z', prev, '{"a":"é"}').toString('hex'));
  });

  it('the frontier gives the RFC 6962 root from hex and from bytes, resumes from its hexes, and clones', () => {
    const leaves = Array.from({ length: 70 }, () => randomBytes(32));
    const fromBytes = MerkleFrontier.empty();
    const fromHex = MerkleFrontier.empty();
    for (let n = 1; n <= leaves.length; n++) {
      fromBytes.append(leaves[n - 1]!);
      fromHex.appendHex(leaves[n - 1]!.toString('hex'));
      const want = mth(leaves.slice(0, n));
      assert.deepEqual(fromBytes.root(), want);
      assert.deepEqual(fromHex.root(), want);
      assert.deepEqual(MerkleFrontier.from(n, fromHex.hexes()).root(), want);
    }
    const copy = fromHex.clone();
    fromHex.appendHex(randomBytes(32).toString('hex'));
    assert.deepEqual(copy.root(), mth(leaves));
    // Hashes of other lengths (not a record hash) still follow RFC 6962.
    const odd = [randomBytes(5), randomBytes(40)];
    const f = MerkleFrontier.empty();
    for (const l of odd) f.append(l);
    assert.deepEqual(f.root(), mth(odd));
  });
});

describe('event bus', () => {
  it('calls listeners in order; subscribing or unsubscribing during a publish affects only later ones', () => {
    const bus = new EventBus();
    const seen: string[] = [];
    const e = { type: 'platform.started', time: now() } as AnyEvent;
    let offB: () => void = () => undefined;
    bus.subscribe(() => {
      seen.push('a');
      offB();
      bus.subscribe(() => seen.push('late'));
    });
    offB = bus.subscribe(() => seen.push('b'));
    bus.publish(e);
    assert.deepEqual(seen, ['a', 'b']);
    seen.length = 0;
    offB = () => undefined;
    bus.publish(e);
    assert.deepEqual(seen, ['a', 'late']);
  });

  it('a throwing listener stops the publish and reaches the publisher; off removes one registration', () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const twice = () => seen.push(1);
    bus.subscribe(twice);
    const off = bus.subscribe(twice);
    bus.publish({ type: 'platform.started', time: now() } as AnyEvent);
    assert.deepEqual(seen, [1, 1]);
    off(); // as EventEmitter.off: one registration of the listener goes
    seen.length = 0;
    bus.publish({ type: 'platform.started', time: now() } as AnyEvent);
    assert.deepEqual(seen, [1]);
    bus.subscribe(() => {
      throw new Error('listener failed');
    });
    bus.subscribe(() => seen.push(2));
    seen.length = 0;
    assert.throws(() => bus.publish({ type: 'platform.started', time: now() } as AnyEvent), /listener failed/);
    assert.deepEqual(seen, [1]);
  });

  it('now() is the ISO time of the current millisecond', () => {
    for (let i = 0; i < 1000; i++) {
      const before = Date.now();
      const t = now();
      const after = Date.now();
      assert.match(t, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const ms = Date.parse(t);
      assert.ok(ms >= before && ms <= after, `${t} not within [${before}, ${after}]`);
    }
  });
});

describe('audit store: canonical form from either side', () => {
  it('records events canonicalized by the caller and by the writer alike, in order, and verifies', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { durability: 'strict' });
    const events: Record<string, unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      // Every third one has a Date (toJSON): only the writer can canonicalize it.
      events.push(i % 3 === 0 ? { ...statementEvent(i), at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) } : statementEvent(i));
    }
    const results = await Promise.all(events.map((e) => s.append(e)));
    assert.deepEqual(
      results.map((r) => r.seq),
      events.map((_, i) => i + 1),
    );
    await s.close();
    const records: unknown[] = [];
    for await (const r of readRecords(dir)) records.push(r.event);
    assert.equal(records.length, events.length);
    for (let i = 0; i < events.length; i++) {
      const want = JSON.parse(JSON.stringify(events[i])) as unknown;
      assert.equal(canonicalJson(records[i]), canonicalJson(want));
    }
    const report = await verifyStore(dir, { publicKey: s.publicKey });
    assert.equal(report.ok, true);
  });
});
