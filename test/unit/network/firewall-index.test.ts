import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatIp, ipToKey, ipv6FromBigint, parseIp } from '../../../src/network/address.js';
import { buildFirewallIndex, type FirewallRule } from '../../../src/network/firewall-index.js';

const rule = (name: string, startIpAddress: string, endIpAddress = startIpAddress): FirewallRule => ({
  name,
  startIpAddress,
  endIpAddress,
});

describe('buildFirewallIndex / match', () => {
  it('denies everything when there are no rules', () => {
    const index = buildFirewallIndex([]);
    for (const ip of ['0.0.0.0', '10.0.0.1', '255.255.255.255', '::', '::1', 'ffff::1']) assert.equal(index.match(ip), null, ip);
    assert.equal(index.ruleCount, 0);
  });

  it('matches a single-address range and nothing next to it', () => {
    const index = buildFirewallIndex([rule('one', '10.0.0.5')]);
    assert.equal(index.match('10.0.0.5'), 'one');
    assert.equal(index.match('10.0.0.4'), null);
    assert.equal(index.match('10.0.0.6'), null);
  });

  it('matches inclusive range ends', () => {
    const index = buildFirewallIndex([rule('office', '192.168.1.10', '192.168.1.20')]);
    assert.equal(index.match('192.168.1.9'), null);
    assert.equal(index.match('192.168.1.10'), 'office');
    assert.equal(index.match('192.168.1.15'), 'office');
    assert.equal(index.match('192.168.1.20'), 'office');
    assert.equal(index.match('192.168.1.21'), null);
  });

  it('covers the whole IPv4 space with 0.0.0.0–255.255.255.255 but no IPv6', () => {
    const index = buildFirewallIndex([rule('all', '0.0.0.0', '255.255.255.255')]);
    assert.equal(index.match('0.0.0.0'), 'all');
    assert.equal(index.match('255.255.255.255'), 'all');
    assert.equal(index.match('::ffff:8.8.8.8'), 'all');
    assert.equal(index.match('::1'), null);
    assert.equal(index.match('2001:db8::1'), null);
  });

  it('covers the whole IPv6 space with ::–ffff:…:ffff', () => {
    const index = buildFirewallIndex([rule('all6', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')]);
    assert.equal(index.match('::'), 'all6');
    assert.equal(index.match('::1'), 'all6');
    assert.equal(index.match('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 'all6');
    assert.equal(index.match('10.0.0.1'), null);
    // A mapped client is an IPv4 client: the IPv6 rule does not admit it.
    assert.equal(index.match('::ffff:10.0.0.1'), null);
  });

  it('judges IPv4-mapped IPv6 as IPv4, and accepts rules written in mapped form', () => {
    const index = buildFirewallIndex([rule('mapped', '::ffff:10.0.0.0', '::ffff:10.0.0.255')]);
    assert.equal(index.match('10.0.0.7'), 'mapped');
    assert.equal(index.match('::ffff:10.0.0.7'), 'mapped');
    assert.equal(index.match('::ffff:a00:107'), null);
    assert.equal(index.match('::ffff:a00:7'), 'mapped');
  });

  it('matches ::1 and IPv6 ranges', () => {
    const index = buildFirewallIndex([rule('loop', '::1'), rule('doc', '2001:db8::', '2001:db8::ffff')]);
    assert.equal(index.match('::1'), 'loop');
    assert.equal(index.match('::2'), null);
    assert.equal(index.match('::'), null);
    assert.equal(index.match('2001:db8::'), 'doc');
    assert.equal(index.match('2001:db8::ffff'), 'doc');
    assert.equal(index.match('2001:db8::1:0'), null);
    assert.equal(index.match('127.0.0.1'), null);
  });

  it('explains overlaps with the first rule in name order', () => {
    const index = buildFirewallIndex([
      rule('zeta', '10.0.0.0', '10.0.0.255'),
      rule('alpha', '10.0.0.100', '10.0.0.110'),
      rule('mid', '10.0.0.105', '10.0.1.10'),
    ]);
    assert.equal(index.match('10.0.0.99'), 'zeta');
    assert.equal(index.match('10.0.0.100'), 'alpha');
    assert.equal(index.match('10.0.0.110'), 'alpha');
    assert.equal(index.match('10.0.0.111'), 'mid');
    assert.equal(index.match('10.0.0.255'), 'mid');
    assert.equal(index.match('10.0.1.10'), 'mid');
    assert.equal(index.match('10.0.1.11'), null);
    // Ordinal order: upper case sorts before lower case.
    const cased = buildFirewallIndex([rule('b', '1.1.1.1'), rule('B', '1.1.1.1'), rule('a', '1.1.1.1')]);
    assert.equal(cased.match('1.1.1.1'), 'B');
  });

  it('keeps adjacent ranges apart', () => {
    const index = buildFirewallIndex([rule('low', '10.0.0.0', '10.0.0.9'), rule('high', '10.0.0.10', '10.0.0.19')]);
    assert.equal(index.match('10.0.0.9'), 'low');
    assert.equal(index.match('10.0.0.10'), 'high');
    assert.equal(index.match('10.0.0.20'), null);
    assert.equal(index.pieceCount, 4 + 1); // v4: none | low | high | none, v6: none
  });

  it('merges pieces with the same winner', () => {
    const index = buildFirewallIndex([rule('a', '10.0.0.0', '10.0.0.100'), rule('b', '10.0.0.50', '10.0.0.60')]);
    assert.equal(index.pieceCount, 3 + 1); // v4: none | a | none, v6: none
  });

  it('accepts ParsedIp as well as text, and matches nothing for invalid text', () => {
    const index = buildFirewallIndex([rule('all', '0.0.0.0', '255.255.255.255')]);
    assert.equal(index.match(parseIp('1.2.3.4')!), 'all');
    assert.equal(index.match('1.2.3'), null);
    assert.equal(index.match(''), null);
  });

  it('refuses invalid rules and duplicate names', () => {
    assert.throws(() => buildFirewallIndex([rule('x', '10.0.0.2', '10.0.0.1')]), {
      name: 'TypeError',
      message: 'firewall rule "x": startIpAddress "10.0.0.2" must be less than or equal to endIpAddress "10.0.0.1"',
    });
    assert.throws(() => buildFirewallIndex([rule('x', '10.0.0.1', '::1')]), TypeError);
    assert.throws(() => buildFirewallIndex([rule('x', '10.0.0.1'), rule('x', '10.0.0.2')]), {
      message: 'duplicate firewall rule name "x"',
    });
  });
});

describe('FirewallIndex.update', () => {
  it('adds, replaces and removes without touching the old index', () => {
    const base = buildFirewallIndex([rule('a', '10.0.0.0', '10.0.0.255'), rule('c', '::1')]);
    const added = base.update({ upsert: [rule('b', '10.0.1.0', '10.0.1.255')] });
    assert.equal(added.match('10.0.1.1'), 'b');
    assert.equal(base.match('10.0.1.1'), null);
    assert.equal(added.ruleCount, 3);

    const moved = added.update({ upsert: [rule('a', '2001:db8::', '2001:db8::1')] });
    assert.equal(moved.match('10.0.0.1'), null);
    assert.equal(moved.match('2001:db8::1'), 'a');
    assert.equal(added.match('10.0.0.1'), 'a');
    assert.equal(moved.ruleCount, 3);

    const removed = moved.update({ remove: ['c', 'unknown'] });
    assert.equal(removed.match('::1'), null);
    assert.equal(moved.match('::1'), 'c');
    assert.equal(removed.ruleCount, 2);
  });

  it('reveals the next rule when the winner of an overlap is removed', () => {
    const base = buildFirewallIndex([rule('a', '10.0.0.10', '10.0.0.20'), rule('b', '10.0.0.0', '10.0.0.255')]);
    assert.equal(base.match('10.0.0.15'), 'a');
    const next = base.update({ remove: ['a'] });
    assert.equal(next.match('10.0.0.15'), 'b');
    assert.equal(next.pieceCount, 3 + 1);
  });

  it('handles windows at both ends of the address space', () => {
    let index = buildFirewallIndex([]);
    index = index.update({ upsert: [rule('lo', '0.0.0.0', '0.0.0.9'), rule('hi', '255.255.255.250', '255.255.255.255')] });
    index = index.update({
      upsert: [rule('lo6', '::', '::9'), rule('hi6', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')],
    });
    assert.equal(index.match('0.0.0.0'), 'lo');
    assert.equal(index.match('0.0.0.10'), null);
    assert.equal(index.match('255.255.255.255'), 'hi');
    assert.equal(index.match('::'), 'lo6');
    assert.equal(index.match('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 'hi6');
    index = index.update({ remove: ['lo', 'hi', 'lo6', 'hi6'] });
    assert.equal(index.match('0.0.0.0'), null);
    assert.equal(index.match('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), null);
    assert.equal(index.pieceCount, 2);
  });

  it('takes the full-rebuild path for large changes with the same result', () => {
    const many = (prefix: string, n: number, offset: number): FirewallRule[] =>
      Array.from({ length: n }, (_, i) => rule(`${prefix}${i}`, `10.0.${i}.0`, `10.0.${i + offset}.255`));
    const base = buildFirewallIndex(many('a', 100, 0));
    const next = base.update({ remove: many('a', 70, 0).map((r) => r.name), upsert: many('b', 70, 5) });
    const fresh = buildFirewallIndex([...many('a', 100, 0).slice(70), ...many('b', 70, 5)]);
    assert.equal(next.ruleCount, 100);
    assert.equal(next.pieceCount, fresh.pieceCount);
    for (let i = 0; i < 120; i++) assert.equal(next.match(`10.0.${i}.9`), fresh.match(`10.0.${i}.9`), `10.0.${i}.9`);
    assert.equal(next.match('10.0.0.9'), 'b0');
    assert.equal(next.match('10.0.74.9'), 'a74');
    assert.equal(base.match('10.0.0.9'), 'a0');
  });

  it('stays correct across many small updates (ids are compacted), old snapshots included', () => {
    const first = buildFirewallIndex([rule('keep', '::1')]);
    let index = first;
    const snapshots: [number, ReturnType<typeof buildFirewallIndex>][] = [];
    for (let i = 0; i < 1500; i++) {
      index = index.update({ upsert: [rule('moving', `10.0.${i % 256}.${i % 200}`)] });
      if (i % 300 === 0) snapshots.push([i, index]);
    }
    assert.equal(index.ruleCount, 2);
    assert.equal(index.match('10.0.219.99'), 'moving'); // i = 1499
    assert.equal(index.match('10.0.218.98'), null);
    assert.equal(index.match('::1'), 'keep');
    for (const [i, snap] of snapshots) {
      assert.equal(snap.match(`10.0.${i % 256}.${i % 200}`), 'moving', `snapshot ${i}`);
      assert.equal(snap.match('::1'), 'keep');
    }
    assert.equal(first.match('10.0.0.0'), null);
  });

  it('refuses an invalid upsert and keeps working', () => {
    const base = buildFirewallIndex([rule('a', '10.0.0.1')]);
    assert.throws(() => base.update({ upsert: [rule('b', 'x', '10.0.0.1')] }), TypeError);
    assert.throws(() => base.update({ upsert: [rule('b', '10.0.0.1'), rule('b', '10.0.0.2')] }), TypeError);
    assert.equal(base.update({ upsert: [rule('b', '10.0.0.2')] }).match('10.0.0.2'), 'b');
  });
});

// ---- Randomized cross-check against a linear scan. --------------------------------------------

interface Model {
  name: string;
  family: 4 | 6;
  start: bigint;
  end: bigint;
}

function bruteForce(rules: readonly Model[], ip: string): string | null {
  const p = parseIp(ip);
  if (p === null) return null;
  const key = BigInt(ipToKey(p));
  let best: string | null = null;
  for (const r of rules) {
    if (r.family === p.family && r.start <= key && key <= r.end && (best === null || r.name < best)) best = r.name;
  }
  return best;
}

function text(family: 4 | 6, key: bigint): string {
  return family === 4 ? formatIp({ family: 4, value: Number(key) }) : formatIp(ipv6FromBigint(key));
}

// Small coordinates (so ranges collide often) placed near the bottom, the middle and the top
// of each address space, so edge keys are exercised too.
const max4 = 0xffffffffn;
const max6 = (1n << 128n) - 1n;
const base = fc.constantFrom(0n, 0x80000000n, 1n << 100n, max4 - 40n, max6 - 40n);
const modelRule = fc.record({
  name: fc.stringMatching(/^[a-e]{1,2}$/),
  family: fc.constantFrom<4 | 6>(4, 6),
  base,
  a: fc.bigInt({ min: 0n, max: 40n }),
  b: fc.bigInt({ min: 0n, max: 40n }),
});

function toModel(r: { name: string; family: 4 | 6; base: bigint; a: bigint; b: bigint }): Model {
  const top = r.family === 4 ? max4 : max6;
  const baseKey = r.base > top - 40n ? top - 40n : r.base;
  // biome-ignore lint/complexity/useMathMinMax: bigints; Math.min takes numbers only
  const lo = baseKey + (r.a < r.b ? r.a : r.b);
  // biome-ignore lint/complexity/useMathMinMax: bigints; Math.min takes numbers only
  const hi = baseKey + (r.a < r.b ? r.b : r.a);
  return { name: r.name, family: r.family, start: lo, end: hi };
}

function uniqueByName(models: Model[]): Model[] {
  const seen = new Map<string, Model>();
  for (const m of models) seen.set(m.name, m);
  return [...seen.values()];
}

function probes(models: readonly Model[]): string[] {
  const out = ['0.0.0.0', '255.255.255.255', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'];
  for (const m of models) {
    const top = m.family === 4 ? max4 : max6;
    for (const k of [m.start - 1n, m.start, m.end, m.end + 1n, (m.start + m.end) / 2n]) {
      if (k >= 0n && k <= top) out.push(text(m.family, k));
    }
  }
  return out;
}

const asRule = (m: Model): FirewallRule => rule(m.name, text(m.family, m.start), text(m.family, m.end));

describe('FirewallIndex against a linear scan (property)', () => {
  it('build: same answer as brute force everywhere it matters', () => {
    fc.assert(
      fc.property(fc.array(modelRule, { maxLength: 30 }), fc.array(fc.bigInt({ min: 0n, max: max4 }), { maxLength: 20 }), (raw, randomIps) => {
        const models = uniqueByName(raw.map(toModel));
        const index = buildFirewallIndex(models.map(asRule));
        for (const ip of [...probes(models), ...randomIps.map((k) => text(4, k))]) {
          assert.equal(index.match(ip), bruteForce(models, ip), ip);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('update: a sequence of upserts and removals equals a fresh build', () => {
    const step = fc.oneof(
      modelRule.map((r) => ({ upsert: toModel(r) })),
      fc.stringMatching(/^[a-e]{1,2}$/).map((name) => ({ remove: name })),
    );
    fc.assert(
      fc.property(fc.array(modelRule, { maxLength: 20 }), fc.array(step, { maxLength: 15 }), (raw, steps) => {
        let models = uniqueByName(raw.map(toModel));
        let index = buildFirewallIndex(models.map(asRule));
        for (const s of steps) {
          if ('upsert' in s) {
            models = [...models.filter((m) => m.name !== s.upsert.name), s.upsert];
            index = index.update({ upsert: [asRule(s.upsert)] });
          } else {
            models = models.filter((m) => m.name !== s.remove);
            index = index.update({ remove: [s.remove] });
          }
          assert.equal(index.ruleCount, models.length);
          for (const ip of probes(models)) assert.equal(index.match(ip), bruteForce(models, ip), ip);
        }
        // Same shape as a fresh build: the incremental path keeps the pieces minimal.
        assert.equal(index.pieceCount, buildFirewallIndex(models.map(asRule)).pieceCount);
      }),
      { numRuns: 300 },
    );
  });
});
