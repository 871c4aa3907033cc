// Firewall rules benchmark: decision cost and rebuild cost at 10, 1,000 and 100,000 rules.
// Run: npx tsc -p . && node dist/bench/rules.js   (about 15 s; not a timed test, gates nothing)

import { formatIp, ipv6FromBigint, parseIp, type ParsedIp } from '../src/network/address.js';
import { decideNetworkAccess, type ConnectionFacts, type NetworkSnapshot } from '../src/network/decide.js';
import { buildFirewallIndex, type FirewallIndex, type FirewallRule } from '../src/network/firewall-index.js';

const goalNs = 2000;
const decisions = 1_000_000;
const addressPool = 1 << 17; // distinct random addresses, cycled to reach `decisions`

// Deterministic PRNG (xorshift32) so runs are comparable.
let seed = 0x2545f491;
function rand32(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}
const rand128 = (): bigint => (BigInt(rand32()) << 96n) | (BigInt(rand32()) << 64n) | (BigInt(rand32()) << 32n) | BigInt(rand32());
const text4 = (v: number): string => formatIp({ family: 4, value: v >>> 0 });
const text6 = (k: bigint): string => formatIp(ipv6FromBigint(k));

interface Fixture {
  rules: FirewallRule[];
  ips: ParsedIp[];
  texts: string[];
}

/** Half IPv4, half IPv6 rules of random width; addresses half inside some rule, half random. */
function fixture(count: number): Fixture {
  const rules: FirewallRule[] = [];
  const inside: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const start = rand32() % 0xfff00000;
      const end = start + (rand32() % 4096);
      rules.push({ name: `v4-${i}`, startIpAddress: text4(start), endIpAddress: text4(end) });
      if (inside.length < addressPool / 2) inside.push(text4(start + Math.floor((end - start) / 2)));
    } else {
      const start = rand128() >> 1n;
      const end = start + (BigInt(rand32()) << 32n);
      rules.push({ name: `v6-${i}`, startIpAddress: text6(start), endIpAddress: text6(end) });
      if (inside.length < addressPool / 2) inside.push(text6(start + 1n));
    }
  }
  const texts: string[] = [];
  for (let i = 0; i < addressPool; i++) {
    if (i % 2 === 0) texts.push(inside[(i / 2) % inside.length]);
    else texts.push(i % 4 === 1 ? text4(rand32()) : text6(rand128()));
  }
  return { rules, texts, ips: texts.map((t) => parseIp(t) as ParsedIp) };
}

/** ns per call of fn(i) over `decisions` calls, after a warm-up pass. */
function timeNs(fn: (i: number) => boolean): { ns: number; hits: number } {
  let hits = 0;
  for (let i = 0; i < addressPool; i++) if (fn(i)) hits++;
  hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < decisions; i++) if (fn(i & (addressPool - 1))) hits++;
  return { ns: Number(process.hrtime.bigint() - t0) / decisions, hits };
}

function msOf(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pad = (s: string, n: number): string => s.padStart(n);

function main(): void {
  console.log(`pgwarden rules benchmark — node ${process.version}, ${fmt(decisions)} decisions per row, warm\n`);
  const header = ['rules', 'pieces', 'build ms', 'match(ip) ns', 'match(text) ns', 'decide ns', 'decide/s', 'hit %'];
  const widths = [9, 9, 10, 14, 16, 11, 12, 7];
  console.log(header.map((h, i) => pad(h, widths[i])).join(''));
  let last: { index: FirewallIndex; fx: Fixture; decideNs: number; matchNs: number } | undefined;
  for (const count of [10, 1_000, 100_000]) {
    const fx = fixture(count);
    let index: FirewallIndex = buildFirewallIndex([]);
    const buildMs = msOf(() => {
      index = buildFirewallIndex(fx.rules);
    });
    const snapshot: NetworkSnapshot = { publicNetworkAccess: 'Enabled', firewall: index, vnetRules: [], privateEndpoints: new Map() };
    const conns: ConnectionFacts[] = fx.texts.map((clientAddress) => ({
      clientAddress,
      listener: { kind: 'public' },
      user: 'app',
      database: 'app',
      ssl: true,
    }));
    const parsed = timeNs((i) => index.match(fx.ips[i]) !== null);
    const text = timeNs((i) => index.match(fx.texts[i]) !== null);
    const decide = timeNs((i) => decideNetworkAccess(conns[i], snapshot).allow);
    const row = [
      fmt(count),
      fmt(index.pieceCount),
      fmt(buildMs, 1),
      fmt(parsed.ns, 0),
      fmt(text.ns, 0),
      fmt(decide.ns, 0),
      fmt(1e9 / decide.ns),
      fmt((100 * decide.hits) / decisions, 1),
    ];
    console.log(row.map((c, i) => pad(c, widths[i])).join(''));
    last = { index, fx, decideNs: decide.ns, matchNs: parsed.ns };
  }
  if (last === undefined) return;

  // Rebuild after one change at 100,000 rules: full build vs incremental update.
  const { index, fx } = last;
  const changed = fx.rules.slice();
  const full: number[] = [];
  const upsert: number[] = [];
  const remove: number[] = [];
  for (let k = 0; k < 7; k++) {
    const start = rand32() % 0xfff00000;
    const rule: FirewallRule = { name: `v4-${2 * k}`, startIpAddress: text4(start), endIpAddress: text4(start + 100) };
    changed[2 * k] = rule;
    full.push(msOf(() => buildFirewallIndex(changed)));
    upsert.push(msOf(() => index.update({ upsert: [rule] })));
    remove.push(msOf(() => index.update({ remove: [`v6-${2 * k + 1}`] })));
  }
  console.log(`\nrebuild after one change at ${fmt(fx.rules.length)} rules (median of 7):`);
  console.log(`  full buildFirewallIndex   ${pad(fmt(median(full), 1), 8)} ms`);
  console.log(`  index.update({upsert})    ${pad(fmt(median(upsert), 2), 8)} ms`);
  console.log(`  index.update({remove})    ${pad(fmt(median(remove), 2), 8)} ms`);

  ipv6KeyComparison();

  const ok = last.decideNs <= goalNs;
  console.log(
    `\ngoal: ≤ ${fmt(goalNs)} ns per decision at 100,000 rules — decideNetworkAccess ${fmt(last.decideNs)} ns, ` +
      `index.match ${fmt(last.matchNs)} ns: ${ok ? 'MET' : 'NOT MET'}`,
  );
}

/** Why IPv6 keys are four uint32 words: binary search over the same keys held as bigint. */
function ipv6KeyComparison(): void {
  const n = 200_000;
  const keys = Array.from({ length: n }, rand128).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const words = new Uint32Array(n * 4);
  const hi = new BigUint64Array(n);
  const lo = new BigUint64Array(n);
  keys.forEach((k, i) => {
    const w = ipv6FromBigint(k);
    words.set([w.w0, w.w1, w.w2, w.w3], i * 4);
    hi[i] = k >> 64n;
    lo[i] = k & 0xffffffffffffffffn;
  });
  const probes = Array.from({ length: 1 << 16 }, () => ipv6FromBigint(rand128()));
  const probeKeys = probes.map((p) => (BigInt(p.w0) << 96n) | (BigInt(p.w1) << 64n) | (BigInt(p.w2) << 32n) | BigInt(p.w3));
  const lookups = 500_000;
  const run = (fn: (i: number) => number): number => {
    let sink = 0;
    for (let i = 0; i < 1 << 16; i++) sink += fn(i);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < lookups; i++) sink += fn(i & 0xffff);
    const ns = Number(process.hrtime.bigint() - t0) / lookups;
    return sink === -1 ? 0 : ns;
  };
  const wordsNs = run((i) => {
    const p = probes[i];
    let a = 0;
    let b = n - 1;
    while (a < b) {
      const m = (a + b + 1) >>> 1;
      const o = m * 4;
      const le =
        words[o] !== p.w0 ? words[o] < p.w0 : words[o + 1] !== p.w1 ? words[o + 1] < p.w1 : words[o + 2] !== p.w2 ? words[o + 2] < p.w2 : words[o + 3] <= p.w3;
      if (le) a = m;
      else b = m - 1;
    }
    return a;
  });
  const bigintNs = run((i) => {
    const k = probeKeys[i];
    const khi = k >> 64n;
    const klo = k & 0xffffffffffffffffn;
    let a = 0;
    let b = n - 1;
    while (a < b) {
      const m = (a + b + 1) >>> 1;
      const le = hi[m] !== khi ? hi[m] < khi : lo[m] <= klo;
      if (le) a = m;
      else b = m - 1;
    }
    return a;
  });
  console.log(
    `\nIPv6 key representation, binary search over ${fmt(n)} keys: ` + `4×uint32 words ${fmt(wordsNs)} ns, 2×BigUint64 halves ${fmt(bigintNs)} ns per lookup`,
  );
}

main();
