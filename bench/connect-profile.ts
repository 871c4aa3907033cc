// The gateway's CPU per new connection (issue 18), quicker than bench:gateway's -C runs: a
// platform in a child process (as bench:gateway), one server in session pooling, then
// `pgbench -C -S` (TLS sslmode=require + SCRAM-SHA-256 every time) through the gateway in
// rounds. Per round: connections, tps, and the gateway process's CPU µs per connection from
// /proc (utime + stime of all its threads), split by thread name (the JS main thread, the
// native relay's threads, libuv's pool, V8's helpers). `--cpu-prof` runs the child under
// `node --cpu-prof` and prints the top self-time functions over the measured rounds.
// A bounded load script, not a test. Needs root (as bench:gateway).
// Run: node dist/bench/connect-profile.js [--rounds 3] [--seconds 10] [--clients 8] [--cpu-prof [--cpu-prof-dir DIR]] [--relay js|native]
import path from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchOptions, benchRoot } from './lib/platform-harness.js';
import { initialize, selectOnly, type PgTarget } from './lib/pgbench.js';
import { ChildPlatform } from './lib/child-platform.js';
import { monotonicUs, summarizeProfile, type Window } from './lib/cpuprofile.js';
import { inclusiveTimes } from './lib/cpuprofile-inclusive.js';
import { fixed, table } from './lib/format.js';
import { runBench } from './lib/cleanup.js';
import { apiTarget } from './lib/audit-settings.js';
import { setPoolMode } from './lib/pool-mode.js';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '8' },
    'cpu-prof': { type: 'boolean', default: false },
    'cpu-prof-dir': { type: 'string' },
    relay: { type: 'string' },
    /** Pool mode of the server for the runs (default session, as bench:gateway's -C runs). */
    'pool-mode': { type: 'string', default: 'session' },
    /** A node option for the platform child (repeatable), e.g. --node-arg=--perf-basic-prof. */
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
const ROUNDS = Math.max(1, Number(flags.rounds));
const SECONDS = Math.max(1, Number(flags.seconds));
const CLIENTS = Math.max(1, Number(flags.clients));
const SERVER = 'bench';
const ADMIN = 'benchadmin';
const PASSWORD = 'Bench-Pass-2024';

const TICK_MS = 10;
/** utime + stime per thread name of a process, ms (threads of one name summed); the main
 * thread's utime and stime also apart ('main (JS) user', 'main (JS) system'). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      // Node's own threads are all 'node' (V8 helpers, libuv's pool, worker_threads): by tid.
      const name = Number(tid) === pid ? 'main (JS)' : comm === 'node' ? `node tid ${tid}` : comm;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) * TICK_MS);
      if (Number(tid) === pid) {
        out.set(`${name} user`, Number(f[11]) * TICK_MS);
        out.set(`${name} system`, Number(f[12]) * TICK_MS);
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function processCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

await runBench(async () => {
  const root = benchRoot('pgw-bench-connect-');
  const relay = flags.relay as 'js' | 'native' | undefined;
  const options = { ...benchOptions(path.join(root, 'data')), ...(relay ? { relay } : {}) };
  const profileDir = flags['cpu-prof-dir'] ? path.resolve(flags['cpu-prof-dir']) : path.join(root, 'profiles');
  const platform = await ChildPlatform.start(options, flags['cpu-prof'] ? profileDir : null, flags['node-arg']);
  await platform.call<number>({ cmd: 'createServer', name: SERVER, login: ADMIN, password: PASSWORD });
  await platform.call({ cmd: 'allowLoopback', name: SERVER });
  const t: PgTarget = { label: 'gateway', host: '127.0.0.1', port: platform.gatewayPort, user: `${ADMIN}@${SERVER}`, password: PASSWORD, database: 'postgres' };
  await initialize(t, 1);
  const refused = await setPoolMode(apiTarget(options.dataDir), SERVER, flags['pool-mode'] as 'session');
  if (refused) console.log(`pool mode ${flags['pool-mode']}: ${refused}`);
  await new Promise((r) => setTimeout(r, 1000));
  const run = { clients: CLIENTS, threads: CLIENTS, seconds: SECONDS, connectEach: true };
  await selectOnly(t, { ...run, seconds: 3 }); // warm-up: fills the pool, JIT
  console.log(`gateway process ${platform.pid}`);
  console.log(`pgbench -C -S -c ${CLIENTS} -j ${CLIENTS} -T ${SECONDS}, ${ROUNDS} rounds; pool mode ${flags['pool-mode']}; relay ${relay ?? 'default'}`);

  const windows: Window[] = [];
  const byThread = new Map<string, number>();
  let totalMs = 0;
  let totalTx = 0;
  const perRound: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const threads0 = threadCpu(platform.pid);
    const cpu0 = processCpu(platform.pid);
    const start = monotonicUs();
    const r = await selectOnly(t, run);
    const end = monotonicUs();
    const cpuMs = processCpu(platform.pid) - cpu0;
    for (const [name, ms] of threadCpu(platform.pid)) byThread.set(name, (byThread.get(name) ?? 0) + ms - (threads0.get(name) ?? 0));
    windows.push({ startUs: start, endUs: end });
    totalMs += cpuMs;
    totalTx += r.transactions;
    perRound.push((1000 * cpuMs) / r.transactions);
    console.log(
      `  round ${round + 1}: ${r.transactions} connections, ${fixed(r.tps, 0)} tps, gateway CPU ${fixed((1000 * cpuMs) / r.transactions, 0)} µs per connection`,
    );
  }
  console.log(
    table(
      ['thread', 'CPU ms', 'µs per connection'],
      [...byThread]
        .filter(([, ms]) => ms > 0)
        .sort((a, b) => b[1] - a[1])
        .map(([name, ms]) => [name, fixed(ms, 0), fixed((1000 * ms) / totalTx, 0)]),
    ),
  );
  const profile = await platform.stop();
  if (profile) {
    const s = summarizeProfile(profile, 30, windows);
    console.log(`\nCPU profile ${profile}: busy ${fixed(s.busyMs / 1000, 1)} s of ${fixed(s.wallMs / 1000, 1)} s (main thread samples, wall clock)`);
    console.log(
      table(
        ['self time: function', 'location', 'µs per connection', 'share'],
        s.functions.map((f) => [f.name, f.location, fixed((1000 * f.selfMs) / totalTx, 1), `${fixed(100 * f.share, 1)}%`]),
      ),
    );
    console.log(
      table(
        ['self time by file', 'µs per connection', 'share'],
        s.files.slice(0, 20).map((f) => [f.name, fixed((1000 * f.selfMs) / totalTx, 1), `${fixed(100 * f.share, 1)}%`]),
      ),
    );
    const inc = inclusiveTimes(profile, windows, (p) => p.startsWith('dist/src/'), 40);
    console.log(
      table(
        ['inclusive time: function of src/', 'location', 'µs per connection', 'share'],
        inc.functions.map((f) => [f.name, f.location, fixed((1000 * f.totalMs) / totalTx, 1), `${fixed((100 * f.totalMs) / inc.busyMs, 1)}%`]),
      ),
    );
  }
  console.log(
    `\nconnect cpu_us_per_connection=${fixed((1000 * totalMs) / totalTx, 0)} (rounds ${perRound.map((v) => fixed(v, 0)).join(', ')}) connections=${totalTx}`,
  );
});
