// Statement audit benchmark: what auditing every statement in the gateway relay costs.
// pgbench select-only (-S, scale 1, 16 clients, -j 2) over TLS (sslmode=require, SCRAM-SHA-256)
// through the gateway to one managed PostgreSQL server, in three legs that differ only in the
// server's audit settings (PATCH /servers/{name}/auditSettings, in force before each run):
//   audit_off      classes []: no statement audit (the relay has no tap);
//   audit_all      READ,WRITE,FUNCTION,ROLE,DDL,MISC,MISC_SET: every statement decoded,
//                  classified and recorded;
//   audit_default  ROLE,DDL (the default): every statement decoded and classified, none of
//                  pgbench's recorded.
// The audit store runs with batched durability (written at once, fdatasync every 200 ms). The
// settings also drive pgAudit on the server when it is installed (`pgaudit.log`), and the platform
// ingests its lines as `statement.pgaudit` events: that is part of what "audit all" costs here.
// The legs alternate in rounds (the order rotating), after a warm-up per leg, like bench:gateway.
// Per leg: TPS, latency, CPU per transaction of the gateway process and of the server, and what
// the store recorded (events per transaction, from the store's files after the runs).
// Then, unless --profile-seconds 0, the platform is restarted under `node --cpu-prof` (so the
// measured legs above carry no profiler) and one audit_off and one audit_all run are profiled:
// self time by file in µs per transaction (what audit_all adds), the top self-time functions of
// src/audit and their inclusive time (lib/cpuprofile-inclusive.ts), mapped to the .ts sources.
// Last line: ratio audit_all/off=X.XX audit_default/off=Y.YY (goal: audit_all/off ≥ 0.9).
// Run: npm run bench:audit  (or: npx tsc -p . && node dist/bench/audit.js)
//      [-- --seconds 15] [--rounds 3] [--warmup 3] [--profile-seconds 5] [--cpu-prof-dir DIR]
//      [--rate TPS]  (pgbench -R in every leg: CPU per transaction at one rate; the TPS ratio then says nothing)
//      [--relay-threads N]  (the native relay's threads; default the platform's)
//      [--pgaudit-split]  (a 4th leg, audit_all_no_pgaudit: all classes with pgaudit.log=none set
//      on the server by ALTER SYSTEM, i.e. the gateway's share of the cost; diagnostic only)
// (about 80 s on 2 cores; not a timed test, gates nothing)
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { platformPaths } from '../src/host/paths.js';
import { platformStoreKey } from '../src/app/audit-store-key.js';
import { SystemKeyRoot } from '../src/crypto/index.js';
import { runBench } from './lib/cleanup.js';
import { benchOptions, benchRoot } from './lib/platform-harness.js';
import { initialize, selectOnly, type PgbenchResult, type PgTarget, type SelectOnlyRun } from './lib/pgbench.js';
import { ChildPlatform } from './lib/child-platform.js';
import { monotonicUs, summarizeProfile, type Window } from './lib/cpuprofile.js';
import { fixed, goal, table } from './lib/format.js';
import { ALL_CLASSES, DEFAULT_CLASSES, apiTarget, currentPgauditLog, overridePgauditLog, pgauditLogValue, setAuditClasses } from './lib/audit-settings.js';
import { machineCpuMs, postmasterPid, processCpuMs, serverCpuMs, threadCpuMs } from './lib/proc-cpu.js';
import { tallyStore, waitForQuietStore, type Tally, type TallyWindow } from './lib/audit-tally.js';
import { inclusiveTimes } from './lib/cpuprofile-inclusive.js';
import { sourceLocation } from './lib/source-location.js';
import { cpuByThreadName, threadCpuDelta } from './lib/thread-cpu.js';

const { values: flags } = parseArgs({
  options: {
    /** Seconds per leg, split into the rounds. */
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    /** Length of the profiled audit_all run; 0 skips the profile. */
    'profile-seconds': { type: 'string', default: '5' },
    /** Where to keep the .cpuprofile (default: the bench's temp dir, removed at the end). */
    'cpu-prof-dir': { type: 'string' },
    /** Offered TPS (pgbench -R) in every leg: CPU per transaction compared at one rate, without the
     * throughput feedback (fewer transactions per second: fewer messages per read, more wake-ups). */
    rate: { type: 'string' },
    /** A fourth leg: all classes with pgAudit off on the server (ALTER SYSTEM), the gateway's share. */
    'pgaudit-split': { type: 'boolean', default: false },
    /** The native relay's threads (`up --relay-threads`); default the platform's. */
    'relay-threads': { type: 'string' },
  },
});
const ROUNDS = Math.max(1, Number(flags.rounds));
const RATE = flags.rate === undefined ? undefined : Math.max(1, Number(flags.rate));
const RUN: SelectOnlyRun = {
  clients: 16,
  threads: 2,
  seconds: Math.max(1, Math.round(Number(flags.seconds) / ROUNDS)),
  connectEach: false,
  ...(RATE !== undefined ? { rate: RATE } : {}),
};
const WARMUP: SelectOnlyRun = { ...RUN, seconds: Math.max(1, Number(flags.warmup)) };
const PROFILE_SECONDS = Math.max(0, Number(flags['profile-seconds']));

const SERVER = 'bench';
const ADMIN = 'benchadmin';
const PASSWORD = 'Bench-Pass-2024';
const DATABASE = 'postgres';
const APPLICATION = 'pgw-bench'; // lib/pgbench.ts sets PGAPPNAME
const PGBENCH_SELECT = 'SELECT abalance FROM pgbench_accounts'; // pgbench -S: one per transaction

type Leg = 'audit_off' | 'audit_all' | 'audit_default' | 'audit_all_no_pgaudit';
const LEGS: { leg: Leg; classes: readonly string[]; what: string; pgauditOff?: boolean }[] = [
  { leg: 'audit_off', classes: [], what: 'classes []' },
  { leg: 'audit_all', classes: ALL_CLASSES, what: ALL_CLASSES.join(',') },
  { leg: 'audit_default', classes: DEFAULT_CLASSES, what: `${DEFAULT_CLASSES.join(',')} (default)` },
  ...(flags['pgaudit-split']
    ? [
        {
          leg: 'audit_all_no_pgaudit' as const,
          classes: ALL_CLASSES,
          pgauditOff: true,
          what: 'all classes, but pgaudit.log=none on the server (ALTER SYSTEM): the gateway alone',
        },
      ]
    : []),
];

interface Round {
  readonly r: PgbenchResult;
  readonly window: TallyWindow;
  readonly gatewayCpuMs: number;
  /** Of gatewayCpuMs, the platform's main thread (its event loop); the rest is its other threads. */
  readonly gatewayMainCpuMs: number;
  readonly serverCpuMs: number;
  readonly machineBusyMs: number;
  readonly machineTotalMs: number;
  /** The gateway process's CPU by thread name, ms. */
  readonly threadsMs: Map<string, number>;
}
const rounds = new Map<Leg, Round[]>(LEGS.map((l) => [l.leg, []]));
let tallies = new Map<string, Tally>();
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const tps = (leg: Leg) => mean(rounds.get(leg)!.map((x) => x.r.tps));

await runBench(async () => {
  const root = benchRoot('pgw-bench-audit-');
  const options = {
    ...benchOptions(path.join(root, 'data')),
    auditDurability: 'batched' as const,
    ...(flags['relay-threads'] ? { relayThreads: Number(flags['relay-threads']) } : {}),
  };
  const paths = platformPaths(options.dataDir);
  console.log(
    `audit benchmark: pgbench -S (scale 1) -c ${RUN.clients} -j ${RUN.threads}${RATE !== undefined ? ` -R ${RATE}` : ''} over TLS (sslmode=require), SCRAM-SHA-256, through the gateway; ` +
      `audit store durability batched; legs ${LEGS.map((l) => l.leg).join(', ')} alternating in ${ROUNDS} rounds × ${RUN.seconds} s, ${WARMUP.seconds} s warm-up per leg`,
  );
  for (const l of LEGS) console.log(`  ${l.leg}: ${l.what}`);
  console.log(
    `data dir ${options.dataDir}; load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} on ${cpus().length} cores (compare runs on an idle machine)`,
  );

  const platform = await ChildPlatform.start(options, null);
  const id = await platform.call<number>({ cmd: 'createServer', name: SERVER, login: ADMIN, password: PASSWORD });
  await platform.call({ cmd: 'allowLoopback', name: SERVER });
  const api = apiTarget(options.dataDir);
  const gateway = (port: number): PgTarget => ({
    label: 'gateway',
    host: '127.0.0.1',
    port,
    user: `${ADMIN}@${SERVER}`,
    password: PASSWORD,
    database: DATABASE,
  });
  await initialize(gateway(platform.gatewayPort), 1);
  const [info] = await platform.call<{ v: string; sb: string; spl: string }[]>({
    cmd: 'query',
    id,
    sql: "select version() v, current_setting('shared_buffers') sb, current_setting('shared_preload_libraries') spl",
  });
  const pgaudit = (await currentPgauditLog(platform, id)) !== null;
  console.log(
    `server: ${info!.v.split(' on ')[0]}; shared_buffers=${info!.sb} shared_preload_libraries=${info!.spl || '(none)'}; ` +
      (pgaudit ? 'pgAudit loaded: pgaudit.log follows the classes (none / all / role,ddl)' : 'pgAudit not loaded: gateway statement audit only'),
  );
  const pmPid = postmasterPid(paths.serverData(id));
  const target = gateway(platform.gatewayPort);
  let overridden: string | null = null; // pgaudit.log the platform set, while ALTER SYSTEM hides it
  const apply = async (l: (typeof LEGS)[number]) => {
    if (overridden !== null) await overridePgauditLog(platform, id, null, overridden);
    overridden = null;
    await setAuditClasses(api, platform, SERVER, id, l.classes);
    if (l.pgauditOff && pgaudit) {
      overridden = pgauditLogValue(l.classes);
      await overridePgauditLog(platform, id, 'none');
    }
  };

  console.log('');
  for (const l of LEGS) {
    await apply(l);
    await selectOnly(target, WARMUP);
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = LEGS.map((_, i) => LEGS[(i + round) % LEGS.length]!);
    const line: string[] = [];
    for (const l of order) {
      const { leg } = l;
      await apply(l);
      const g0 = processCpuMs(platform.pid);
      const gm0 = threadCpuMs(platform.pid);
      const gt0 = cpuByThreadName(platform.pid);
      const s0 = serverCpuMs(pmPid);
      const m0 = machineCpuMs();
      const startMs = Date.now();
      const r = await selectOnly(target, RUN);
      const endMs = Date.now();
      await new Promise((res) => setTimeout(res, 100)); // the backends exit and are reaped
      const m1 = machineCpuMs();
      rounds.get(leg)!.push({
        r,
        window: { key: `${leg}#${round}`, startMs, endMs },
        gatewayCpuMs: processCpuMs(platform.pid) - g0,
        gatewayMainCpuMs: threadCpuMs(platform.pid) - gm0,
        serverCpuMs: serverCpuMs(pmPid) - s0,
        machineBusyMs: m1.busy - m0.busy,
        machineTotalMs: m1.total - m0.total,
        threadsMs: threadCpuDelta(gt0, cpuByThreadName(platform.pid)),
      });
      line.push(`${leg} ${fixed(r.tps, 0)} tps`);
    }
    console.log(`  round ${round + 1}/${ROUNDS}: ${line.join(', ')}`);
  }

  if (overridden !== null) await overridePgauditLog(platform, id, null, overridden);

  // What the store holds for each run (pgAudit lines are ingested every 500 ms: wait for them).
  // A new platform's store is sealed, off the audit volume (src/app/audit-store-key.ts).
  const storeKey = await platformStoreKey(await SystemKeyRoot.load(path.join(paths.secretsDir, 'kek-root.key'), { create: false }), paths.auditStoreKey, false);
  await waitForQuietStore(paths.sealedAuditDir);
  tallies = await tallyStore(
    paths.sealedAuditDir,
    [...rounds.values()].flat().map((x) => x.window),
    APPLICATION,
    PGBENCH_SELECT,
    storeKey,
  );
  report(pgaudit);

  if (PROFILE_SECONDS > 0) {
    await platform.stop();
    await profileAuditAll(options, flags['cpu-prof-dir'] ? path.resolve(flags['cpu-prof-dir']) : path.join(root, 'profiles'), id);
  }
  summaryLine();
});

function report(pgaudit: boolean): void {
  const rows: string[][] = [];
  for (const { leg } of LEGS) {
    const rs = rounds.get(leg)!;
    const tx = sum(rs.map((x) => x.r.transactions));
    const t = rs.map((x) => tallies.get(x.window.key)!);
    const seconds = sum(rs.map((x) => (x.window.endMs - x.window.startMs) / 1000));
    rows.push([
      leg,
      fixed(tps(leg), 0),
      `${fixed(Math.min(...rs.map((x) => x.r.tps)), 0)}–${fixed(Math.max(...rs.map((x) => x.r.tps)), 0)}`,
      fixed(mean(rs.map((x) => x.r.latencyMs)), 3),
      fixed((1000 * sum(rs.map((x) => x.gatewayCpuMs))) / tx, 1),
      fixed((1000 * sum(rs.map((x) => x.gatewayMainCpuMs))) / tx, 1),
      fixed((1000 * sum(rs.map((x) => x.serverCpuMs))) / tx, 1),
      `${fixed((100 * sum(rs.map((x) => x.machineBusyMs))) / sum(rs.map((x) => x.machineTotalMs)), 0)}%`,
      fixed(sum(t.map((x) => x.statements)) / tx, 3),
      pgaudit ? fixed(sum(t.map((x) => x.pgaudit)) / tx, 3) : 'n/a',
      fixed(sum(t.map((x) => x.statements + x.pgaudit + x.other)) / seconds, 0),
      fixed(sum(t.map((x) => x.bytes)) / seconds / 1e6, 2),
    ]);
  }
  console.log('');
  console.log(
    table(
      [
        'leg',
        'tps (mean)',
        'tps per round',
        'latency avg ms',
        'gateway CPU µs/tx',
        'of it event loop',
        'server CPU µs/tx',
        'machine busy',
        'gateway stmt events/tx',
        'pgAudit events/tx',
        'store records/s',
        'store MB/s',
      ],
      rows,
    ),
  );
  console.log(
    '(CPU from /proc: the gateway is the platform child process (all its threads; "of it event loop": its main thread, the rest is ' +
      "the audit writer and pgAudit reader threads and libuv's pool), the server is its postmaster with every backend and " +
      'auxiliary process; machine busy is of all cores. Events counted from the store files, by the time of each event.)',
  );
  // The gateway's CPU by thread name (which thread pays what a leg adds).
  const names = new Set<string>();
  for (const rs of rounds.values()) for (const x of rs) for (const [name, ms] of x.threadsMs) if (ms > 0) names.add(name);
  const threadNames = [...names].sort();
  console.log(
    table(
      ['gateway CPU µs/tx by thread', ...threadNames],
      LEGS.map(({ leg }) => {
        const rs = rounds.get(leg)!;
        const tx = sum(rs.map((x) => x.r.transactions));
        return [leg, ...threadNames.map((name) => fixed((1000 * sum(rs.map((x) => x.threadsMs.get(name) ?? 0))) / tx, 1))];
      }),
    ),
  );
  // pgbench -S: one SELECT per transaction (plus a few set-up queries of its own per run).
  const lines: string[] = [];
  for (const { leg, classes } of LEGS) {
    const rs = rounds.get(leg)!;
    const tx = sum(rs.map((x) => x.r.transactions));
    const t = rs.map((x) => tallies.get(x.window.key)!);
    const selects = sum(t.map((x) => x.matching));
    const others = sum(t.map((x) => x.statements)) - selects;
    const late = sum(t.map((x) => x.late));
    const audited = classes.includes('READ');
    const ok = audited ? selects === tx : selects === 0;
    lines.push(
      `${leg} ${selects} pgbench SELECT events for ${tx} transactions (+${others} set-up statements${late ? `; ${late} timed after the run's end` : ''}): ${ok ? 'ok' : audited ? `MISMATCH (${selects - tx})` : 'UNEXPECTED'}`,
    );
  }
  console.log(`check: ${lines.join('; ')}`);
}

async function profileAuditAll(options: ReturnType<typeof benchOptions>, profileDir: string, id: number): Promise<void> {
  // audit_off too, in the same profiled process, as the reference the audit_all costs add to.
  const legs = LEGS.filter((l) => l.leg === 'audit_off' || l.leg === 'audit_all');
  console.log(
    `\nprofile: platform restarted under node --cpu-prof; ${legs.map((l) => l.leg).join(' then ')}, ` +
      `each ${WARMUP.seconds} s warm-up then ${PROFILE_SECONDS} s profiled (the TPS include the profiler's overhead)`,
  );
  const platform = await ChildPlatform.start(options, profileDir);
  const api = apiTarget(options.dataDir);
  const target: PgTarget = {
    label: 'gateway',
    host: '127.0.0.1',
    port: platform.gatewayPort,
    user: `${ADMIN}@${SERVER}`,
    password: PASSWORD,
    database: DATABASE,
  };
  const measured: { leg: Leg; window: Window; r: PgbenchResult }[] = [];
  for (const { leg, classes } of legs) {
    await setAuditClasses(api, platform, SERVER, id, classes);
    await selectOnly(target, WARMUP);
    const start = monotonicUs();
    const r = await selectOnly(target, { ...RUN, seconds: PROFILE_SECONDS });
    measured.push({ leg, window: { startUs: start, endUs: monotonicUs() }, r });
  }
  const file = await platform.stop();
  if (!file) throw new Error('no .cpuprofile');
  // The runs' windows (µs of CLOCK_MONOTONIC) beside the profile, for a closer look later.
  writeFileSync(
    `${file}.windows.json`,
    `${JSON.stringify(Object.fromEntries(measured.map((m) => [m.leg, { ...m.window, transactions: m.r.transactions }])))}\n`,
  );
  console.log(`  ${file} (+ .windows.json)`);

  // Any build directory (dist, or a copy a run was started from).
  const isAudit = (p: string) => /^[^/]+\/src\/audit\//.test(p);
  const per = measured.map((m) => ({ ...m, s: summarizeProfile(file, 1_000_000, [m.window]) }));
  for (const m of per) {
    console.log(
      `  ${m.leg}: ${fixed(m.r.tps, 0)} tps; gateway thread busy ${fixed(m.s.busyMs / 1000, 2)} s of ${fixed(m.s.wallMs / 1000, 2)} s = ` +
        `${fixed((1000 * m.s.busyMs) / m.r.transactions, 1)} µs per transaction (samples: wall time, descheduled time included)`,
    );
  }
  const off = per.find((m) => m.leg === 'audit_off')!;
  const all = per.find((m) => m.leg === 'audit_all')!;
  const usPerTx = (m: typeof all, ms: number | undefined) => (1000 * (ms ?? 0)) / m.r.transactions;
  const files = new Set([...off.s.files, ...all.s.files].map((f) => f.name));
  const fileMs = (m: typeof all, name: string) => m.s.files.find((f) => f.name === name)?.selfMs;
  const byFile = [...files]
    .map((name) => ({ name, off: usPerTx(off, fileMs(off, name)), all: usPerTx(all, fileMs(all, name)) }))
    .sort((a, b) => b.all - b.off - (a.all - a.off))
    .slice(0, 12);
  console.log(
    table(
      ['self time by file or package, µs per transaction', 'audit_off', 'audit_all', 'added'],
      byFile.map((f) => [f.name, fixed(f.off, 1), fixed(f.all, 1), fixed(f.all - f.off, 1)]),
    ),
  );

  const inc = inclusiveTimes(file, [all.window], isAudit, 12);
  const audit = all.s.functions.filter((f) => isAudit(f.location));
  console.log(
    `  audit_all: src/audit self time ${fixed(usPerTx(all, sum(audit.map((f) => f.selfMs))), 1)} µs/tx (${fixed(100 * sum(audit.map((f) => f.share)), 1)}% of busy); ` +
      `samples with src/audit on the stack (with the builtins and node internals it calls) ${fixed(usPerTx(all, inc.matchedMs), 1)} µs/tx (${fixed((100 * inc.matchedMs) / inc.busyMs, 1)}%)`,
  );
  console.log(
    table(
      ['audit_all, top 15 self time in src/audit', 'source', 'self ms', 'µs/tx', 'share'],
      audit.slice(0, 15).map((f) => [f.name, sourceLocation(f.location), fixed(f.selfMs, 0), fixed(usPerTx(all, f.selfMs), 1), `${fixed(100 * f.share, 1)}%`]),
    ),
  );
  console.log(
    table(
      ['audit_all, inclusive time of src/audit functions', 'source', 'total ms', 'µs/tx', 'share'],
      inc.functions.map((f) => [
        f.name,
        sourceLocation(f.location),
        fixed(f.totalMs, 0),
        fixed(usPerTx(all, f.totalMs), 1),
        `${fixed((100 * f.totalMs) / inc.busyMs, 1)}%`,
      ]),
    ),
  );
}

function summaryLine(): void {
  const all = tps('audit_all') / tps('audit_off');
  const def = tps('audit_default') / tps('audit_off');
  console.log('');
  console.log(`goal: audit_all/off ≥ 0.9 (${fixed(all)}): ${goal(all >= 0.9)}`);
  const split = rounds.has('audit_all_no_pgaudit') ? ` audit_all_no_pgaudit/off=${fixed(tps('audit_all_no_pgaudit') / tps('audit_off'))}` : '';
  console.log(`ratio audit_all/off=${fixed(all)} audit_default/off=${fixed(def)}${split}`);
}
