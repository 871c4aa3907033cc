// The gateway benchmark's results and report (bench/gateway.ts runs the legs): each round's
// pgbench result and the CPU per (leg, run), their means over the rounds, and what is printed at
// the end: the table of every leg and run, the floors' table, the gateway's CPU profile summaries
// (--cpu-prof) and the summary lines with the goals.
import { summarizeProfile, type Window } from './cpuprofile.js';
import { inclusiveTimes } from './cpuprofile-inclusive.js';
import { fixed, goal, table } from './format.js';
import type { PgbenchResult, SelectOnlyRun } from './pgbench.js';

export type Leg = string; // direct, pgbouncer, gateway, node-floor[-variant]
export type Kind = 'persistent' | 'oneClient' | 'perConnection' | 'perConnectionOne';
export interface Phase {
  readonly kind: Kind;
  readonly title: string;
  readonly run: SelectOnlyRun; // seconds: per round
  readonly rounds: number;
  readonly profile: 'data' | 'connect';
}

/** Where the gateway's data path time goes: samples with a subsystem anywhere on the stack
 * (with the node internals and builtins it calls), per transaction of the gateway's runs. */
const SUBSYSTEMS: [string, string][] = [
  ['dist/src/gateway/relay.', 'relay (its handlers; pipe() runs in node internals)'],
  ['dist/src/pgwire/observer/', 'session observer (framing both directions)'],
  ['dist/src/audit/', 'statement audit (tap, classify, events)'],
  ['dist/src/threat/', 'threat protection (SQL watch)'],
  ['dist/src/sql/', 'SQL lexer and shape cache'],
];

interface Aggregate {
  readonly rounds: PgbenchResult[];
  readonly tps: number; // mean over rounds of equal length
  readonly msPerTx: number; // clients / tps
  readonly latencyMs: number; // mean of pgbench's "latency average"
  readonly connectionMs: number | null;
}

export class GatewayResults {
  private readonly results = new Map<Leg, Map<Kind, PgbenchResult[]>>();
  /** CPU ms of the leg's proxy process, of the server and of pgbench (the client), and
   * transactions, per (leg, kind). */
  readonly cpu = new Map<string, { proxyMs: number; serverMs: number; clientMs: number; tx: number }>();
  /** User-mode CPU ms of the floor legs' processes, per (leg, kind): TLS and relay code alone. */
  readonly userCpu = new Map<string, number>();
  /** CPU ms of the gateway legs' platform process by thread name, per (leg, kind). */
  readonly threads = new Map<string, Map<string, number>>();
  readonly windows: Record<'data' | 'connect', Window[]> = { data: [], connect: [] };

  /** `nativeLegs`: the native floor legs of the first runtime, named in the summary. */
  constructor(
    private readonly phases: readonly Phase[],
    private readonly nativeLegs: readonly { readonly backend: string; readonly leg: Leg }[],
  ) {}

  record(leg: Leg, kind: Kind, r: PgbenchResult): void {
    const byKind = this.results.get(leg) ?? new Map<Kind, PgbenchResult[]>();
    this.results.set(leg, byKind);
    byKind.set(kind, [...(byKind.get(kind) ?? []), r]);
  }

  aggregate(leg: Leg, kind: Kind): Aggregate | null {
    const rounds = this.results.get(leg)?.get(kind);
    if (!rounds?.length) return null;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const tps = mean(rounds.map((r) => r.tps));
    const clients = this.phases.find((p) => p.kind === kind)!.run.clients;
    const conn = rounds.map((r) => r.connectionMs).filter((x): x is number => x !== null);
    return { rounds, tps, msPerTx: (1000 * clients) / tps, latencyMs: mean(rounds.map((r) => r.latencyMs)), connectionMs: conn.length ? mean(conn) : null };
  }

  report(): void {
    const rows: string[][] = [];
    for (const leg of this.results.keys()) {
      for (const p of this.phases) {
        const a = this.aggregate(leg, p.kind);
        if (!a) continue;
        const lo = Math.min(...a.rounds.map((r) => r.tps));
        const hi = Math.max(...a.rounds.map((r) => r.tps));
        const c = this.cpu.get(`${leg}/${p.kind}`);
        const proxyUs = c && leg !== 'direct' ? (1000 * c.proxyMs) / c.tx : null;
        const serverUs = c ? (1000 * c.serverMs) / c.tx : null;
        const clientUs = c ? (1000 * c.clientMs) / c.tx : null;
        rows.push([
          leg,
          p.title,
          fixed(a.tps, 0),
          `${fixed(lo, 0)}–${fixed(hi, 0)}`,
          fixed(a.latencyMs, 3),
          fixed(a.msPerTx, 4),
          fixed(a.connectionMs, 3),
          fixed(proxyUs, 1),
          fixed(serverUs, 1),
          fixed(clientUs, 1),
        ]);
      }
    }
    console.log('');
    console.log(
      table(
        [
          'leg',
          'run',
          'tps (mean)',
          'tps per round',
          'latency avg ms',
          'ms/tx (clients/tps)',
          'conn ms (initial | -C avg)',
          'proxy CPU µs/tx',
          'server CPU µs/tx',
          'pgbench CPU µs/tx',
        ],
        rows,
      ),
    );
    this.floorTable();
    console.log(
      "proxy CPU: utime+stime from /proc of the gateway's platform child, of PgBouncer, of the node and native floors, over each leg's runs, per transaction; " +
        'server CPU: the postmaster and its backends (reaped ones included); pgbench CPU: the client itself (its TLS, and with -C its SCRAM key derivation), ' +
        "from the bench process's reaped children. /proc counts in 10 ms ticks.",
    );
  }

  /** The floors (node and native) against direct PostgreSQL and PgBouncer, per persistent run. */
  private floorTable(): void {
    const rows: string[][] = [];
    for (const leg of this.results.keys()) {
      if (!leg.includes('floor')) continue;
      for (const kind of ['persistent', 'oneClient'] as const) {
        const a = this.aggregate(leg, kind);
        if (!a) continue;
        const c = this.cpu.get(`${leg}/${kind}`);
        const d = this.aggregate('direct', kind);
        const b = this.aggregate('pgbouncer', kind);
        rows.push([
          leg,
          this.phases.find((p) => p.kind === kind)!.title,
          fixed(a.tps, 0),
          fixed(c ? (1000 * c.proxyMs) / c.tx : null, 1),
          fixed(c ? (1000 * (this.userCpu.get(`${leg}/${kind}`) ?? NaN)) / c.tx : null, 1),
          fixed(d ? a.tps / d.tps : null),
          fixed(b ? a.tps / b.tps : null),
        ]);
      }
    }
    if (rows.length) console.log(table(['floor leg', 'run', 'tps (mean)', 'proxy CPU µs/tx', 'of it user µs/tx', '/direct', '/pgbouncer'], rows));
  }

  private printSubsystems(file: string, w: Window[], kinds: Kind[]): void {
    const tx = kinds.reduce((n, k) => n + (this.cpu.get(`gateway/${k}`)?.tx ?? 0), 0);
    const rows = SUBSYSTEMS.map(([prefix, label]) => {
      const inc = inclusiveTimes(file, w, (p) => p.startsWith(prefix), 0);
      return [label, prefix, fixed(inc.matchedMs, 0), fixed((1000 * inc.matchedMs) / tx, 1), `${fixed((100 * inc.matchedMs) / inc.busyMs, 1)}%`];
    });
    console.log(table(['subsystem on the stack (inclusive; nested: relay ⊃ observer ⊃ audit)', 'files', 'ms', 'µs/tx', 'share of busy'], rows));
  }

  printProfile(file: string, title: string, w: Window[], kind: 'data' | 'connect'): void {
    const s = summarizeProfile(file, 15, w);
    console.log(`\nCPU profile of the gateway process over the ${title}`);
    console.log(`  ${file}`);
    console.log(
      `  ${fixed(s.wallMs / 1000, 1)} s measured: busy ${fixed(s.busyMs / 1000, 1)} s, idle ${fixed(s.idleMs / 1000, 1)} s; shares are of busy time. ` +
        'Native calls count as the JS function that made them (writeBuffer = a socket write: TLS encryption + the write syscall, including time descheduled in it).',
    );
    console.log(
      table(
        ['top 15 self time: function', 'location', 'self ms', 'share'],
        s.functions.map((f) => [f.name, f.location, fixed(f.selfMs, 0), `${fixed(100 * f.share, 1)}%`]),
      ),
    );
    console.log(
      table(
        ['self time by file or package', 'self ms', 'share'],
        s.files.slice(0, 10).map((f) => [f.name, fixed(f.selfMs, 0), `${fixed(100 * f.share, 1)}%`]),
      ),
    );
    if (kind === 'data') this.printSubsystems(file, w, ['persistent', 'oneClient']);
  }

  addThreads(key: string, delta: Map<string, number>): void {
    const into = this.threads.get(key) ?? new Map<string, number>();
    for (const [name, ms] of delta) into.set(name, (into.get(name) ?? 0) + ms);
    this.threads.set(key, into);
  }

  /** Where the gateway's CPU went, by thread name, in µs per transaction (the relay's threads
   * are "pgwarden-relay…", the event loop "main"). */
  printThreads(): void {
    for (const [key, byName] of this.threads) {
      const tx = this.cpu.get(key)?.tx;
      if (!tx) continue;
      const parts = [...byName]
        .filter(([, ms]) => ms > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([name, ms]) => `${name} ${fixed((1000 * ms) / tx, 1)}`);
      console.log(`${key.replace('/', ', ')}: gateway CPU by thread, µs/tx: ${parts.join(', ')}`);
    }
  }

  summaryLine(): void {
    const tps = (leg: Leg, kind: Kind) => this.aggregate(leg, kind)?.tps ?? NaN;
    const gwBouncer = tps('gateway', 'persistent') / tps('pgbouncer', 'persistent');
    const gwDirect = tps('gateway', 'persistent') / tps('direct', 'persistent');
    const connect = tps('gateway', 'perConnection') / tps('direct', 'perConnection');
    const gwFloor = tps('gateway', 'persistent') / tps('node-floor', 'persistent');
    const cpuUs = (leg: Leg, kind: Kind) => {
      const c = this.cpu.get(`${leg}/${kind}`);
      return c ? (1000 * c.proxyMs) / c.tx : NaN;
    };
    const g1 = this.aggregate('gateway', 'oneClient');
    const d1 = this.aggregate('direct', 'oneClient');
    const addedMs = g1 && d1 ? g1.msPerTx - d1.msPerTx : NaN;
    const gc = this.aggregate('gateway', 'perConnectionOne');
    const dc = this.aggregate('direct', 'perConnectionOne');
    const bc = this.aggregate('pgbouncer', 'perConnectionOne');
    console.log('');
    console.log(
      `added latency at 1 client (gateway − direct, mean ms per transaction): ${fixed(addedMs, 4)} ms ` +
        `(${fixed(g1?.msPerTx, 4)} vs ${fixed(d1?.msPerTx, 4)})`,
    );
    console.log(
      `connection set-up at 1 client (pgbench -C "average connection time", TLS + SCRAM): gateway ${fixed(gc?.connectionMs, 3)} ms, ` +
        `direct ${fixed(dc?.connectionMs, 3)} ms${bc ? `, pgbouncer ${fixed(bc.connectionMs, 3)} ms (pooled: no server fork)` : ''}`,
    );
    console.log(
      `goals: gateway ≥ PgBouncer on select-only (${fixed(gwBouncer)}): ${Number.isNaN(gwBouncer) ? 'n/a' : goal(gwBouncer >= 1)}; ` +
        `added latency at 1 client ≤ 0.1 ms (${fixed(addedMs, 3)} ms): ${goal(addedMs <= 0.1)}; ` +
        `new-connection rate ≥ direct (${fixed(connect)}): ${goal(connect >= 1)}`,
    );
    console.log(
      `CPU µs per transaction (issue 22): select-only 16 clients gateway ${fixed(cpuUs('gateway', 'persistent'), 1)}, ` +
        `pgbouncer ${fixed(cpuUs('pgbouncer', 'persistent'), 1)}, node-floor ${fixed(cpuUs('node-floor', 'persistent'), 1)}; ` +
        `-C 8 clients gateway ${fixed(cpuUs('gateway', 'perConnection'), 1)}, pgbouncer ${fixed(cpuUs('pgbouncer', 'perConnection'), 1)}`,
    );
    console.log(
      `goals (issue 18): gateway/node-floor ≥ 0.95 (${fixed(gwFloor)}): ${goal(gwFloor >= 0.95)}; connect gateway/direct ≥ 2.0 (${fixed(connect)}): ${goal(connect >= 2)}`,
    );
    const gt = this.aggregate('gateway-transaction', 'persistent');
    const bt = this.aggregate('pgbouncer-transaction', 'persistent');
    if (gt || bt) {
      console.log(
        `transaction pooling, select-only 16 clients: gateway ${fixed(gt?.tps, 0)} tps (${fixed(cpuUs('gateway-transaction', 'persistent'), 1)} µs/tx), ` +
          `pgbouncer ${fixed(bt?.tps, 0)} tps (${fixed(cpuUs('pgbouncer-transaction', 'persistent'), 1)} µs/tx); ` +
          `gateway/pgbouncer=${fixed((gt?.tps ?? NaN) / (bt?.tps ?? NaN))}`,
      );
    }
    const natives = this.nativeLegs.map(({ backend: b, leg }) => ({ b, leg, a: this.aggregate(leg, 'persistent') }));
    if (natives.some((n) => n.a)) {
      const best = Math.max(...natives.map((n) => n.a?.tps ?? 0));
      console.log(
        `native floor: ${natives.map(({ b, leg, a }) => `${b} ${fixed(a?.tps, 0)} tps (${fixed(cpuUs(leg, 'persistent'), 1)} µs/tx)`).join(', ')}; ` +
          `best/pgbouncer=${fixed(best / tps('pgbouncer', 'persistent'))}`,
      );
    }
    console.log(
      `ratio gateway/pgbouncer=${fixed(gwBouncer)} gateway/direct=${fixed(gwDirect)} connect gateway/direct=${fixed(connect)} gateway/node-floor=${fixed(gwFloor)}`,
    );
  }
}
