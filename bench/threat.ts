// Threat protection benchmark, three parts in one run:
// 1. detectors: events per second through the ThreatEngine's event path (brute force, login
//    anomalies with real GeoIP/ASN lookups, harmful applications, suspicious-address lists),
//    on one core, with a mix of successful and failed logins from many addresses and users.
//    The catalog is replaced by an in-memory recorder: this part measures detector CPU only.
// 2. SQL injection: µs per statement through the detector, for repeated shapes (cache hits, the
//    steady state of an application) and for distinct shapes (cache misses, a parse each).
//    Then detection quality on the independent corpus (support/fixtures/sqli-independent): recall on
//    injections that parse and false alerts per 10,000 benign statements, per family.
// 3. gateway: pgbench select-only (-S, scale 1, 16 clients, over TLS with SCRAM) through the
//    gateway with threat protection off and on (all alert types, automatic protection), audit
//    at its default settings in both, legs alternating in rounds.
// Last line: detectors=N events/s sqli_hit=X µs sqli_miss=Y µs ratio threat_on/off=Z.ZZ threat_learning/off=W.WW
// (threat_on: after the policy's learning period, the steady state; threat_learning: during it)
// Goals: ≥ 50,000 events/s; threat_on/off ≥ 0.95; per family recall ≥ 0.95 and ≤ 1 false alert
// per 10,000 benign statements.
// Run: npm run bench:threat [-- --seconds 15 --rounds 3 --events 400000] [-- --skip-gateway]
import path from 'node:path';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { callApi } from '../src/cli/api-client.js';
import { EventBus } from '../src/events/bus.js';
import type { AnyEvent, ConnectionContext } from '../src/events/types.js';
import type { ThreatRepo } from '../src/catalog/threat-repo.js';
import { ThreatEngine } from '../src/threat/engine.js';
import { DEFAULT_POLICY, type SecurityAlertPolicy } from '../src/threat/policy.js';
import { threatSources, sqlInspectorFactory } from '../src/threat/start.js';
import { runBench } from './lib/cleanup.js';
import { benchOptions, benchRoot } from './lib/platform-harness.js';
import { initialize, selectOnly, type PgTarget, type SelectOnlyRun } from './lib/pgbench.js';
import { ChildPlatform } from './lib/child-platform.js';
import { apiTarget } from './lib/audit-settings.js';
import { fixed, goal, table } from './lib/format.js';
import { per10k, recall, score } from '../support/fixtures/sqli-independent/corpus.js';
import { shapesOf } from '../src/threat/sql/shapes.js';
import { LearnedShapes } from '../src/threat/sql/learned.js';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    events: { type: 'string', default: '400000' },
    gateway: { type: 'boolean', default: true },
    // Only the in-process parts (detectors, SQL injection cost and corpus): no platform, no pgbench.
    'skip-gateway': { type: 'boolean', default: false },
  },
});
const ROUNDS = Math.max(1, Number(flags.rounds));
const RUN: SelectOnlyRun = { clients: 16, threads: 2, seconds: Math.max(1, Math.round(Number(flags.seconds) / ROUNDS)), connectEach: false };
const WARMUP: SelectOnlyRun = { ...RUN, seconds: Math.max(1, Number(flags.warmup)) };

async function detectors(): Promise<number> {
  const n = Math.max(10_000, Number(flags.events));
  const bus = new EventBus();
  const policy: SecurityAlertPolicy = {
    ...DEFAULT_POLICY,
    state: 'Enabled',
    enabledAt: new Date(0).toISOString(),
    detectors: { ...DEFAULT_POLICY.detectors, learningPeriodSeconds: 0 },
  };
  let alerts = 0;
  const repo = {
    raise: async () => ({ id: String(++alerts), created: true }),
    addCount: async () => undefined,
    baselines: async () => [],
    saveBaselines: async () => undefined,
    addLoginStats: async () => undefined,
  } as unknown as ThreatRepo;
  const engine = new ThreatEngine({
    bus,
    repo,
    log: pino({ level: 'silent' }),
    policies: () => new Map([['db', policy]]),
    serverId: () => 1,
    sources: await threatSources({ geoIp: true, ipLists: [] }),
    sqlInspector: null,
    notifier: null,
  });
  // Addresses from all over the public IPv4 space (real GeoIP/ASN lookups), 2,000 users.
  const events: AnyEvent[] = [];
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 50_000; i++) {
    const a = `${1 + Math.floor(rand() * 222)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${1 + Math.floor(rand() * 254)}`;
    const conn: ConnectionContext = { connId: String(i), clientAddress: a, clientPort: 5000, listener: 'public' };
    const user = `user${Math.floor(rand() * 2000)}`;
    const base = {
      time: new Date(Date.UTC(2026, 0, 1) + i * 10).toISOString(),
      connection: conn,
      server: 'db',
      user,
      database: 'postgres',
      applicationName: rand() < 0.01 ? 'sqlmap/1.8' : 'app',
    };
    events.push(
      rand() < 0.7
        ? { ...base, type: 'auth.succeeded', method: 'scram-sha-256' }
        : { ...base, type: 'auth.failed', method: 'scram-sha-256', sqlstate: '28P01', reason: 'wrong password: invalid proof' },
    );
  }
  for (let i = 0; i < 20_000; i++) engine.handle(events[i % events.length]!); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) engine.handle(events[i % events.length]!);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = n / s;
  console.log(`detectors: ${n} events in ${fixed(s, 2)} s on one core = ${fixed(rate, 0)} events/s (${alerts} alerts opened)`);
  return rate;
}

function sqli(): { hit: number; miss: number } {
  const make = sqlInspectorFactory();
  if (!make) throw new Error('the SQL-injection detector is not available');
  // The steady state after the learning period: the application's shapes are learned.
  const d = make(new LearnedShapes());
  const texts = [
    'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;',
    "SELECT id, name, price FROM products WHERE category = 'lamps' AND price < 40 ORDER BY price LIMIT 20",
    "UPDATE orders SET status = 'shipped', shipped_at = now() WHERE id = 9123",
  ];
  const N = 200_000;
  for (let i = 0; i < 3; i++) d.inspect({ role: 'app', application: 'web', text: texts[i]!, timeMs: i, learn: true });
  for (let i = 0; i < 1000; i++) d.inspect({ role: 'app', application: 'web', text: texts[i % 3]!.replace(/\d+/, String(i)), timeMs: i });
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) d.inspect({ role: 'app', application: 'web', text: texts[i % 3]!.replace(/\d+/, String(i)), timeMs: i });
  const hit = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  const M = 5_000;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < M; i++) d.inspect({ role: 'app', application: 'web', text: `SELECT c${i}, d FROM t${i % 97} WHERE k${i} = 1 AND j = 'x'`, timeMs: i });
  const miss = Number(process.hrtime.bigint() - t0) / 1e3 / M;
  console.log(
    `sql injection check: ${fixed(hit, 2)} µs per statement of a known shape (cache hit), ${fixed(miss, 1)} µs per new shape (cache miss: parsed, judged, compared with 3 learned shapes)`,
  );
  return { hit, miss };
}

/** Detection quality on the independent corpus; true when every family meets its goal. */
function quality(): boolean {
  const d = sqlInspectorFactory()();
  const r = score(
    (text) => d.inspect({ role: 'app', application: 'web', text, timeMs: 0 }) !== null,
    (text) => shapesOf(text) !== null,
  );
  console.log('sql injection, independent corpus (support/fixtures/sqli-independent):');
  console.log(
    table(
      ['benign family', 'statements', 'false alerts', 'per 10,000'],
      r.benign.map((f) => [f.family, String(f.statements), String(f.flagged), fixed(per10k(f), 2)]),
    ),
  );
  console.log(
    table(
      ['injection family', 'that parse', 'caught', 'recall'],
      r.injections.map((f) => [f.family, String(f.statements), String(f.flagged), fixed(recall(f), 3)]),
    ),
  );
  const ok = r.benign.every((f) => per10k(f) <= 1) && r.injections.every((f) => recall(f) >= 0.95);
  const worst = Math.min(...r.injections.map(recall));
  const falses = r.benign.reduce((n, f) => n + f.flagged, 0);
  console.log(`goal: recall ≥ 0.95 and ≤ 1 false alert per 10,000 benign, per family (lowest recall ${fixed(worst, 3)}, ${falses} false alerts): ${goal(ok)}`);
  return ok;
}

async function gateway(): Promise<{ on: number; learning: number }> {
  const root = benchRoot('pgw-bench-threat-');
  const options = benchOptions(path.join(root, 'data'));
  const platform = await ChildPlatform.start(options, null);
  const SERVER = 'bench';
  await platform.call<number>({ cmd: 'createServer', name: SERVER, login: 'benchadmin', password: 'Bench-Pass-2024' });
  await platform.call({ cmd: 'allowLoopback', name: SERVER });
  const api = apiTarget(options.dataDir);
  const target: PgTarget = {
    label: 'gateway',
    host: '127.0.0.1',
    port: platform.gatewayPort,
    user: `benchadmin@${SERVER}`,
    password: 'Bench-Pass-2024',
    database: 'postgres',
  };
  await initialize(target, 1);
  // threat_on: the steady state, after the learning period (1 s here: it ends before the run);
  // threat_learning: during it (7 days by default after enabling), when every statement is
  // inspected and its shape learned (no quiet statements then).
  const on = { state: 'Enabled', disabledAlerts: [], autoProtection: { state: 'Enabled' } };
  const legs = [
    { leg: 'threat_off', body: { state: 'Disabled', autoProtection: { state: 'Disabled' } } },
    { leg: 'threat_on', body: { ...on, detectors: { learningPeriodSeconds: 1 } } },
    { leg: 'threat_learning', body: { ...on, detectors: { learningPeriodSeconds: 7 * 24 * 3600 } } },
  ] as const;
  const apply = async (body: Record<string, unknown>) => {
    await callApi(api, 'PATCH', `/servers/${SERVER}/securityAlertPolicy`, body);
    // The change feed brings it to the gateway's snapshot (and a 1 s learning period ends).
    await new Promise((r) => setTimeout(r, 1500));
  };
  const tps = new Map<string, number[]>(legs.map((l) => [l.leg, []]));
  for (const l of legs) {
    await apply(l.body);
    await selectOnly(target, WARMUP);
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? [...legs].reverse() : legs;
    const line: string[] = [];
    for (const l of order) {
      await apply(l.body);
      const r = await selectOnly(target, RUN);
      tps.get(l.leg)!.push(r.tps);
      line.push(`${l.leg} ${fixed(r.tps, 0)} tps`);
    }
    console.log(`  round ${round + 1}/${ROUNDS}: ${line.join(', ')}`);
  }
  await platform.stop();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(
    table(
      ['leg', 'tps (mean)', 'per round'],
      legs.map((l) => [
        l.leg,
        fixed(mean(tps.get(l.leg)!), 0),
        tps
          .get(l.leg)!
          .map((x) => fixed(x, 0))
          .join(' '),
      ]),
    ),
  );
  const off = mean(tps.get('threat_off')!);
  return { on: mean(tps.get('threat_on')!) / off, learning: mean(tps.get('threat_learning')!) / off };
}

await runBench(async () => {
  console.log(
    `threat protection benchmark; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} on ${cpus().length} cores`,
  );
  const rate = await detectors();
  const s = sqli();
  quality();
  let ratio = NaN;
  let learning = NaN;
  if (flags.gateway && !flags['skip-gateway']) {
    console.log(`gateway: pgbench -S -c ${RUN.clients} -j ${RUN.threads}, ${ROUNDS} rounds × ${RUN.seconds} s per leg, audit at its defaults in both legs`);
    ({ on: ratio, learning } = await gateway());
  }
  console.log('');
  console.log(`goal: detectors ≥ 50,000 events/s (${fixed(rate, 0)}): ${goal(rate >= 50_000)}`);
  if (flags.gateway && !flags['skip-gateway'])
    console.log(`goal: threat_on/off ≥ 0.95 (${fixed(ratio)}, after the learning period; during it ${fixed(learning)}): ${goal(ratio >= 0.95)}`);
  console.log(
    `detectors=${fixed(rate, 0)} events/s sqli_hit=${fixed(s.hit, 2)} µs sqli_miss=${fixed(s.miss, 1)} µs ratio threat_on/off=${fixed(ratio)} threat_learning/off=${fixed(learning)}`,
  );
});
