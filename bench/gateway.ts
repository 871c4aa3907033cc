// Gateway benchmark: pgbench select-only (-S, scale 1) over TLS (sslmode=require, SCRAM-SHA-256)
// against three paths to the same managed PostgreSQL 15 server, serving side by side:
//   direct    the server itself, on a loopback TLS listener added for the benchmark
//             (lib/direct-server.ts: same data dir, same configuration files);
//   pgbouncer PgBouncer, session pooling, TLS to the client with a certificate from the same
//             CA, SCRAM with the role's verifier, Unix socket to the server (lib/pgbouncer.ts);
//   gateway   the pgwarden gateway (TLS, SCRAM passthrough, `user@server` routing);
//   node-floor a bare Node TLS-to-Unix relay with the gateway's TLS settings (lib/node-floor*.ts):
//             the least Node can do, persistent runs only (PostgreSQL does SCRAM over its socket).
// The -C runs put the bench server in session pooling first (PATCH /servers/bench {poolMode}),
// so the gateway reuses server connections as PgBouncer does; a platform whose API does not know
// poolMode answers 400 and the -C runs go through the gateway unpooled, saying so.
// Per leg: tps, and the CPU time of the proxy process (gateway's platform child, PgBouncer, the
// floor) and of the server (postmaster + backends) per transaction, from /proc.
// Runs: persistent connections (16 clients, -j 2), 1 client (added latency), a new connection
// per transaction (pgbench -C: TLS + SCRAM every time; 8 clients, one thread each, and 1 client).
// Each kind of run is split into rounds and the legs alternate inside a round (the order
// rotating), so drift and noise of this small machine fall on all three alike.
// The platform runs in a child process (lib/platform-child.ts); with --cpu-prof it is started
// with `node --cpu-prof --cpu-prof-dir=DIR`, and the top self-time functions of the gateway
// process are printed, counted over the gateway runs only.
// Run: npm run bench:gateway [-- --cpu-prof [--cpu-prof-dir DIR]] [--seconds 15] [--connect-seconds 10] [--rounds 3]
//   [--relay js|native] (the gateway leg's relay; default the platform's: native when the addon is built)
//   [--relay-threads N] (the native relay's threads; default the platform's)
//   [--no-transaction] (no transaction-pooling legs: gateway-transaction, whose clients name the
//   server by SNI, and pgbouncer-transaction; persistent runs only, 20 server connections each)
//   [--floor-variants pipe,onread] (more floor legs: an A/B of relay read paths in one run)
//   [--no-native-floor] [--native-runtimes percore,multi,single] (the native floor legs, native/floor:
//   native-floor-rustls and native-floor-openssl, built with cargo on demand; skipped without it)
// (--cpu-prof-dir keeps the .cpuprofile, e.g. for Chrome DevTools; by default it goes with the temp dir)
// (about 2.5 minutes on 2 cores; not a timed test, gates nothing)
import path from 'node:path';
import { chownSync, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { platformPaths } from '../src/host/paths.js';
import { loadOrCreateCa } from '../src/host/ca.js';
import { PlatformAccounts } from '../src/host/os-accounts.js';
import { runBench } from './lib/cleanup.js';
import { benchOptions, benchRoot } from './lib/platform-harness.js';
import { initialize, selectOnly, type PgTarget, type SelectOnlyRun } from './lib/pgbench.js';
import { startDirectServer } from './lib/direct-server.js';
import { findPgBouncer, startPgBouncer } from './lib/pgbouncer.js';
import { benchCertificate } from './lib/tls-files.js';
import { freePort } from './lib/ports.js';
import { ChildPlatform } from './lib/child-platform.js';
import { monotonicUs } from './lib/cpuprofile.js';
import { fixed } from './lib/format.js';
import { startNodeFloor, type NodeFloor } from './lib/node-floor.js';
import { buildNativeFloor, startNativeFloor, userCpuMs, type NativeBackend, type NativeFloor, type NativeRuntime } from './lib/native-floor.js';
import type { FloorVariant } from './lib/node-floor-server.js';
import { processCpuMs, processWithChildrenCpuMs, reapedChildrenCpuMs, serverCpuMs } from './lib/proc-cpu.js';
import { cpuByThreadName, threadCpuDelta } from './lib/thread-cpu.js';
import { apiTarget } from './lib/audit-settings.js';
import { poolSummary, setPoolMode } from './lib/pool-mode.js';
import { GatewayResults, type Kind, type Leg, type Phase } from './lib/gateway-report.js';

const { values: flags } = parseArgs({
  options: {
    'cpu-prof': { type: 'boolean', default: false },
    /** Where to keep the .cpuprofile (default: the bench's temp dir, removed at the end). */
    'cpu-prof-dir': { type: 'string' },
    seconds: { type: 'string', default: '15' },
    'connect-seconds': { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    /** Node floor legs, by read path (lib/node-floor-server.ts); the first is `node-floor`. */
    'floor-variants': { type: 'string', default: 'pipe' },
    /** Only these legs (comma-separated names), e.g. for an A/B of floor variants. */
    legs: { type: 'string' },
    /** Persistent-connection runs only (no -C runs): a quicker data-path A/B or profile. */
    'no-connect': { type: 'boolean', default: false },
    /** The -C runs only (no persistent runs): a quicker connect-path A/B or profile. */
    'only-connect': { type: 'boolean', default: false },
    /** A node option for the platform child (repeatable), e.g. --node-arg=--trace-deopt. */
    'node-arg': { type: 'string', multiple: true, default: [] },
    /** No `gateway-session` leg (persistent runs in session pooling) even when the API has pools. */
    'no-session-persistent': { type: 'boolean', default: false },
    /** No transaction-pooling legs (`gateway-transaction`, `pgbouncer-transaction`: persistent runs). */
    'no-transaction': { type: 'boolean', default: false },
    /** Gateway processes (`up --gateway-workers N`); the gateway's CPU is all of theirs. */
    'gateway-workers': { type: 'string', default: '1' },
    /** No native floor legs (native/floor, built with cargo when the bench runs). */
    'no-native-floor': { type: 'boolean', default: false },
    /** Native floor threading (the first gets the plain leg names, others a -runtime suffix). */
    'native-runtimes': { type: 'string', default: 'percore' },
    /** The gateway's relay (`up --relay`): js or native; default the platform's (native when the
     * addon is built). */
    relay: { type: 'string' },
    /** The native relay's threads (`up --relay-threads`); default the platform's. */
    'relay-threads': { type: 'string' },
  },
});
const RELAY = flags.relay;
if (RELAY !== undefined && RELAY !== 'js' && RELAY !== 'native') throw new Error(`--relay must be js or native, got '${RELAY}'.`);
const cpuProf = flags['cpu-prof']!;
const ROUNDS = Math.max(1, Number(flags.rounds));

const SERVER = 'bench';
const ADMIN = 'benchadmin';
const PASSWORD = 'Bench-Pass-2024';
const DATABASE = 'postgres';
const WARMUP: SelectOnlyRun = { clients: 16, threads: 2, seconds: 3, connectEach: false };

const FLOOR_VARIANTS = flags['floor-variants']!.split(',').filter(Boolean) as FloorVariant[];
const floorLeg = (v: FloorVariant, i: number) => (i === 0 ? 'node-floor' : `node-floor-${v}`);
const NATIVE_BACKENDS: NativeBackend[] = ['rustls', 'openssl'];
const NATIVE_RUNTIMES = flags['native-runtimes']!.split(',').filter(Boolean) as NativeRuntime[];
const nativeLeg = (b: NativeBackend, r: NativeRuntime, i: number) => `native-floor-${b}${i === 0 ? '' : `-${r}`}`;
/** The native legs asked for: all of them, unless --legs names some or --no-native-floor. */
const NATIVE_LEGS = flags['no-native-floor']
  ? []
  : NATIVE_RUNTIMES.flatMap((r, i) => NATIVE_BACKENDS.map((b) => ({ backend: b, runtime: r, leg: nativeLeg(b, r, i) }))).filter(
      (n) => !flags.legs || flags.legs.split(',').includes(n.leg),
    );

/** `total` seconds per leg, split into rounds of whole seconds. */
function phase(kind: Kind, title: string, clients: number, threads: number, connectEach: boolean, total: number, rounds: number): Phase {
  const r = Math.max(1, Math.min(rounds, total));
  return {
    kind,
    title,
    run: { clients, threads, connectEach, seconds: Math.max(1, Math.round(total / r)) },
    rounds: r,
    profile: connectEach ? 'connect' : 'data',
  };
}

// pgbench opens connections synchronously inside a thread: with -C only -j connections are ever
// being set up at once, so the -C run with 8 clients uses 8 threads.
const ALL_PHASES: Phase[] = [
  phase('persistent', 'select-only, 16 clients', 16, 2, false, Number(flags.seconds), ROUNDS),
  phase('oneClient', 'select-only, 1 client', 1, 1, false, 6, ROUNDS),
  phase('perConnection', 'select-only -C, 8 clients', 8, 8, true, Number(flags['connect-seconds']), 2),
  phase('perConnectionOne', 'select-only -C, 1 client', 1, 1, true, 6, 2),
];
const PHASES = flags['no-connect']
  ? ALL_PHASES.filter((p) => !p.run.connectEach)
  : flags['only-connect']
    ? ALL_PHASES.filter((p) => p.run.connectEach)
    : ALL_PHASES;

const results = new GatewayResults(
  PHASES,
  NATIVE_BACKENDS.map((b) => ({ backend: b, leg: nativeLeg(b, NATIVE_RUNTIMES[0]!, 0) })),
);

const target = (label: Leg, port: number, user: string): PgTarget => ({ label, host: '127.0.0.1', port, user, password: PASSWORD, database: DATABASE });

interface LegRun {
  readonly leg: Leg;
  readonly target: PgTarget;
  /** The process whose CPU is the leg's cost (null: direct, the server is all there is). */
  readonly pid: number | null;
  /** Persistent-connection runs only (the node floor: it is the data path's floor). */
  readonly persistentOnly: boolean;
}

await runBench(async () => {
  const root = benchRoot('pgw-bench-gateway-');
  const options = {
    ...benchOptions(path.join(root, 'data')),
    gatewayWorkers: Math.max(1, Number(flags['gateway-workers'])),
    ...(RELAY ? { relay: RELAY as 'js' | 'native' } : {}),
    ...(flags['relay-threads'] ? { relayThreads: Number(flags['relay-threads']) } : {}),
  };
  const paths = platformPaths(options.dataDir);
  console.log(
    `gateway benchmark: pgbench -S (scale 1) over TLS (sslmode=require), SCRAM-SHA-256; legs direct, pgbouncer, gateway, ${[...FLOOR_VARIANTS.map(floorLeg), ...NATIVE_LEGS.map((n) => n.leg)].join(', ')} ` +
      `alternating in rounds; ${WARMUP.seconds} s warm-up per leg${cpuProf ? '; gateway process under node --cpu-prof' : ''}`,
  );
  for (const p of PHASES) {
    console.log(`  ${p.title} (-c ${p.run.clients} -j ${p.run.threads}): ${p.rounds} × ${p.run.seconds} s per leg`);
  }
  console.log(
    `data dir ${options.dataDir}; gateway processes: ${options.gatewayWorkers}; relay: ${RELAY ?? 'the platform default (native when the addon is built)'}; relay threads: ${options.relayThreads ?? 'the default'}`,
  );
  // Built before the platform starts, so the compile does not run beside it.
  const nativeSkipped = NATIVE_LEGS.length ? buildNativeFloor() : null;
  if (nativeSkipped) console.log(`native floor legs: SKIPPED, ${nativeSkipped}`);

  const profileDir = flags['cpu-prof-dir'] ? path.resolve(flags['cpu-prof-dir']) : path.join(root, 'profiles');
  const platform = await ChildPlatform.start(options, cpuProf ? profileDir : null, flags['node-arg']);
  const id = await platform.call<number>({ cmd: 'createServer', name: SERVER, login: ADMIN, password: PASSWORD });
  await platform.call({ cmd: 'allowLoopback', name: SERVER });
  const account = await PlatformAccounts.forDataDir(paths.root).server(id); // the server's own OS user
  const gateway = target('gateway', platform.gatewayPort, `${ADMIN}@${SERVER}`);
  await initialize(gateway, 1);
  const [info] = await platform.call<{ v: string; sb: string; mc: string; spl: string }[]>({
    cmd: 'query',
    id,
    sql: "select version() v, current_setting('shared_buffers') sb, current_setting('max_connections') mc, current_setting('shared_preload_libraries') spl",
  });
  console.log(`server: ${info!.v.split(' on ')[0]}; shared_buffers=${info!.sb} max_connections=${info!.mc} shared_preload_libraries=${info!.spl || '(none)'}`);

  const benchDir = path.join(root, 'bench');
  mkdirSync(benchDir, { mode: 0o700 });
  chownSync(benchDir, account.uid, account.gid);
  const tls = await benchCertificate(await loadOrCreateCa(paths), benchDir, account);
  const verifier = await platform.call<string | null>({ cmd: 'roleVerifier', id, role: ADMIN });
  if (!verifier?.startsWith('SCRAM-SHA-256$')) throw new Error(`${ADMIN} has no SCRAM verifier`);

  // The server's postmaster, now with a TLS listener on loopback, under the bench.
  await platform.call({ cmd: 'stopServerProcess', id });
  const direct = await startDirectServer({
    dataDir: paths.serverData(id),
    socketDir: paths.serverSocketDir(id),
    benchDir,
    account,
    port: await freePort(),
    tls,
  });
  const legs: LegRun[] = [{ leg: 'direct', target: target('direct', direct.port, ADMIN), pid: null, persistentOnly: false }];
  const pgbouncerBin = findPgBouncer();
  // PgBouncer in session pooling, and in transaction pooling for the transaction legs.
  const startBouncer = async (bin: string, poolMode: 'session' | 'transaction') =>
    startPgBouncer({
      binary: bin,
      dir: benchDir,
      account,
      port: await freePort(),
      socketDir: paths.serverSocketDir(id),
      serverPort: direct.port,
      database: DATABASE,
      user: ADMIN,
      scramVerifier: verifier,
      tls,
      poolSize: 20,
      poolMode,
    });
  const bouncer = pgbouncerBin ? await startBouncer(pgbouncerBin, 'session') : null;
  if (bouncer) legs.push({ leg: 'pgbouncer', target: target('pgbouncer', bouncer.port, ADMIN), pid: bouncer.pid, persistentOnly: false });
  else console.log('pgbouncer: SKIPPED, not installed (Debian package pgbouncer)');
  const bouncerTx = pgbouncerBin && !flags['no-transaction'] ? await startBouncer(pgbouncerBin, 'transaction') : null;
  if (bouncerTx)
    legs.push({ leg: 'pgbouncer-transaction', target: target('pgbouncer-transaction', bouncerTx.port, ADMIN), pid: bouncerTx.pid, persistentOnly: true });
  legs.push({ leg: 'gateway', target: gateway, pid: platform.pid, persistentOnly: false });
  // The floor reaches the same postmaster over its own socket, where the hba asks for SCRAM.
  const floors: NodeFloor[] = [];
  for (const [i, variant] of FLOOR_VARIANTS.entries()) {
    const floor = await startNodeFloor({ tls, socketPath: path.join(paths.serverSocketDir(id), `.s.PGSQL.${direct.port}`), variant });
    floors.push(floor);
    const leg = floorLeg(variant, i);
    legs.push({ leg, target: target(leg, floor.port, ADMIN), pid: floor.pid, persistentOnly: true });
  }
  // The native floor: the same relay as node-floor, in Rust, one process per TLS backend.
  const natives: NativeFloor[] = [];
  for (const n of nativeSkipped ? [] : NATIVE_LEGS) {
    const socketPath = path.join(paths.serverSocketDir(id), `.s.PGSQL.${direct.port}`);
    // A floor that does not start (a broken build, a TLS setting its library refuses) costs its
    // leg, not the run.
    const floor = await startNativeFloor({ tls, socketPath, backend: n.backend, runtime: n.runtime }).catch((err: Error) => {
      console.log(`${n.leg}: SKIPPED, ${err.message}`);
      return null;
    });
    if (!floor) continue;
    natives.push(floor);
    legs.push({ leg: n.leg, target: target(n.leg, floor.port, ADMIN), pid: floor.pid, persistentOnly: true });
  }
  if (flags.legs) {
    const keep = new Set(flags.legs.split(','));
    legs.splice(0, legs.length, ...legs.filter((l) => keep.has(l.leg)));
  }
  const api = apiTarget(options.dataDir);
  // Pool mode none is the default: setting it says whether the API knows poolMode at all.
  const poolRefused = await setPoolMode(api, SERVER, 'none');
  const pooled = poolRefused === null;
  if (!pooled) console.log(`gateway session-mode legs: SKIPPED (${poolRefused}); the -C runs go through the gateway without pooling`);
  else if (!flags['no-session-persistent'] && (!flags.legs || flags.legs.split(',').includes('gateway-session'))) {
    legs.push({ leg: 'gateway-session', target: gateway, pid: platform.pid, persistentOnly: true });
  }
  if (pooled && !flags['no-transaction'] && (!flags.legs || flags.legs.split(',').includes('gateway-transaction'))) {
    // Named by SNI (`{server}.{domain}`, as clients of a managed database connect), which keeps a
    // transaction-pooled connection on Node's TLS and the JavaScript relay.
    const bySni: PgTarget = { ...target('gateway-transaction', platform.gatewayPort, ADMIN), host: `${SERVER}.${options.domain}`, hostaddr: '127.0.0.1' };
    legs.push({ leg: 'gateway-transaction', target: bySni, pid: platform.pid, persistentOnly: true });
  }
  console.log(`legs: ${legs.map((l) => l.leg + (l.persistentOnly ? ' (persistent runs only)' : '')).join(', ')}`);
  // gateway-session: persistent runs in session pooling; gateway-transaction: in transaction
  // pooling; gateway: unpooled, but pooled for -C.
  const wantedMode = (leg: Leg, p: Phase) =>
    leg === 'gateway-transaction' ? 'transaction' : leg === 'gateway-session' || (leg === 'gateway' && p.run.connectEach) ? 'session' : 'none';
  let poolMode: 'none' | 'session' | 'transaction' = 'none';
  let poolFilled = false;
  const applyMode = async (leg: Leg, pid: number | null, p: Phase) => {
    if (!pooled || pid !== platform.pid || wantedMode(leg, p) === poolMode) return;
    poolMode = wantedMode(leg, p);
    const refused = await setPoolMode(api, SERVER, poolMode);
    if (refused) throw new Error(`pool mode ${poolMode}: ${refused}`);
    if (poolMode === 'session' && p.run.connectEach && !poolFilled) {
      poolFilled = true;
      await selectOnly(gateway, { ...WARMUP, connectEach: true }); // new connections: fills the pool
    }
  };

  try {
    console.log('');
    for (const { leg, target: t, pid } of legs) {
      await applyMode(leg, pid, PHASES[0]!);
      await selectOnly(t, WARMUP);
    }
    for (const p of PHASES) {
      const phaseLegs = legs.filter((l) => !l.persistentOnly || !p.run.connectEach);
      if (!phaseLegs.length) continue;
      for (let round = 0; round < p.rounds; round++) {
        const order = phaseLegs.map((_, i) => phaseLegs[(i + round) % phaseLegs.length]!);
        const line: string[] = [];
        for (const { leg, target: t, pid } of order) {
          await applyMode(leg, pid, p);
          const start = monotonicUs();
          const proxyCpu = (of: number) => (of === platform.pid ? processWithChildrenCpuMs(of, 'worker-main.js') : processCpuMs(of));
          const proxy0 = pid === null ? 0 : proxyCpu(pid);
          const threads0 = pid === platform.pid && !p.run.connectEach ? cpuByThreadName(pid) : null;
          const user0 = pid !== null && leg.includes('floor') ? userCpuMs(pid) : 0;
          const server0 = serverCpuMs(direct.pid);
          const client0 = reapedChildrenCpuMs();
          const r = await selectOnly(t, p.run);
          const clientMs = reapedChildrenCpuMs() - client0;
          // A backend that is exiting is counted once the postmaster has reaped it.
          await new Promise((resolve) => setTimeout(resolve, 200));
          const c = results.cpu.get(`${leg}/${p.kind}`) ?? { proxyMs: 0, serverMs: 0, clientMs: 0, tx: 0 };
          results.cpu.set(`${leg}/${p.kind}`, {
            proxyMs: c.proxyMs + (pid === null ? 0 : proxyCpu(pid) - proxy0),
            serverMs: c.serverMs + serverCpuMs(direct.pid) - server0,
            clientMs: c.clientMs + clientMs,
            tx: c.tx + r.transactions,
          });
          if (threads0) results.addThreads(`${leg}/${p.kind}`, threadCpuDelta(threads0, cpuByThreadName(platform.pid)));
          if (pid !== null && leg.includes('floor')) {
            results.userCpu.set(`${leg}/${p.kind}`, (results.userCpu.get(`${leg}/${p.kind}`) ?? 0) + userCpuMs(pid) - user0);
          }
          if (leg === 'gateway') results.windows[p.profile].push({ startUs: start, endUs: monotonicUs() });
          results.record(leg, p.kind, r);
          line.push(`${leg} ${fixed(r.tps, 0)} tps`);
        }
        console.log(`  ${p.title}${p.run.connectEach && pooled ? ' (gateway: session pool)' : ''}, round ${round + 1}/${p.rounds}: ${line.join(', ')}`);
      }
    }
    if (pooled) {
      const pools = await poolSummary(api, SERVER);
      console.log(
        `gateway pool after the -C runs (GET /servers/${SERVER}/pool): ${pools === null ? 'no such route' : `\n    ${pools.replaceAll('\n', '\n    ')}`}`,
      );
    }
  } finally {
    if (poolMode !== 'none') await setPoolMode(api, SERVER, 'none').catch(() => undefined);
    for (const f of floors) await f.stop();
    for (const f of natives) await f.stop();
    await bouncer?.stop();
    await bouncerTx?.stop();
    await direct.stop();
    await platform.call({ cmd: 'startServerProcess', id }); // back under the platform, as it was
  }
  const profile = await platform.stop();

  results.report();
  results.printThreads();
  if (profile) {
    for (const [kind, title] of [
      ['data', 'gateway runs with persistent connections (16 clients and 1 client)'],
      ['connect', 'gateway runs with a new connection per transaction (-C)'],
    ] as const) {
      if (results.windows[kind].length) results.printProfile(profile, title, results.windows[kind], kind);
    }
    console.log('\n[--cpu-prof: the gateway ran under the profiler; its numbers above include the profiler overhead]');
  }
  results.summaryLine();
});
