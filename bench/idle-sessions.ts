// Idle sessions: 10,000 concurrent TLS client sessions through the gateway to one server in
// transaction pooling with a pool of 20 (issue 18's goal: ≤ 1 GiB gateway memory, ≤ 20 server
// backends). A bounded load script, not a test: it starts a platform in a child process (as
// bench:gateway does), sets the server's pool through the REST API (PATCH /servers/{name}
// {poolMode: transaction, poolSize: 20}; a platform whose API refuses it ends the script with a
// message, unless --no-pool asks for a small unpooled run of the client machinery), then opens
// the sessions with node-postgres: TLS (verified against the platform CA), SCRAM-SHA-256, one
// `select 1` each, then idle. Connects are paced (--rate per second, at most --in-flight not yet
// logged in: under the gateway's pre-auth caps of 2,000 in all and 100 per address), inside a
// total deadline. Then it reports the sessions open, the gateway's RSS (VmRSS of the platform
// child), the server's backends for the role (pg_stat_activity) and `select 1` on 100 random
// sessions.
// Run: npm run bench:idle-sessions [-- --sessions 10000 --rate 400 --in-flight 64 --deadline-seconds 600 --no-pool]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { platformPaths } from '../src/host/paths.js';
import { runBench } from './lib/cleanup.js';
import { benchOptions, benchRoot } from './lib/platform-harness.js';
import { ChildPlatform } from './lib/child-platform.js';
import { apiTarget } from './lib/audit-settings.js';
import { poolSummary, setPoolMode } from './lib/pool-mode.js';
import { fixed, goal } from './lib/format.js';

const { values: flags } = parseArgs({
  options: {
    sessions: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '400' },
    'in-flight': { type: 'string', default: '64' },
    'deadline-seconds': { type: 'string', default: '600' },
    'pool-size': { type: 'string', default: '20' },
    /** Without pooling (a platform without the pool): keep --sessions under 200. */
    'no-pool': { type: 'boolean', default: false },
  },
});
const SESSIONS = Number(flags.sessions);
const RATE = Number(flags.rate);
// Logins not yet done count against the gateway's pre-auth cap of 100 per address: all come
// from 127.0.0.1 (the firewall rule's one address), so stay under it.
const IN_FLIGHT = Math.min(90, Number(flags['in-flight']));
const DEADLINE_MS = Number(flags['deadline-seconds']) * 1000;
const POOL_SIZE = Number(flags['pool-size']);
const SERVER = 'idle';
const ADMIN = 'idleadmin';
const PASSWORD = 'Idle-Pass-2024';
const NOFILE = 65536;

/** Raises this process's RLIMIT_NOFILE (inherited by the children) to NOFILE, or as far as the
 * hard limit allows when raising the hard limit is not permitted (a container without
 * CAP_SYS_RESOURCE). Returns the soft limit now. */
function raiseNofile(): number {
  const pid = String(process.pid);
  try {
    execFileSync('prlimit', ['--pid', pid, `--nofile=${NOFILE}:${NOFILE}`], { stdio: 'ignore' });
  } catch {
    const hard = execFileSync('prlimit', ['--pid', pid, '--nofile', '--raw', '--noheadings', '-o', 'HARD'], { encoding: 'utf8' }).trim();
    execFileSync('prlimit', ['--pid', pid, `--nofile=${hard}:${hard}`]);
  }
  return Number(execFileSync('prlimit', ['--pid', pid, '--nofile', '--raw', '--noheadings', '-o', 'SOFT'], { encoding: 'utf8' }).trim());
}

function vmRssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

await runBench(async () => {
  // 10,000 sockets here and as many in the gateway: this process and its children (the platform,
  // which raises its soft limit to the hard one) get a larger RLIMIT_NOFILE.
  const nofile = raiseNofile();
  if (nofile < SESSIONS + 1000) console.log(`RLIMIT_NOFILE is ${nofile} (the hard limit here): fewer than ${SESSIONS} sessions may fit in one process`);
  const root = benchRoot('pgw-bench-idle-');
  const options = benchOptions(path.join(root, 'data'));
  // The gateway's per-server client cap (200 by default) would stop the run: raised for the
  // bench, with the pooled-client cap the pool adds (ignored by a gateway that does not know it).
  const cap = SESSIONS + 100;
  const limits = { maxConnectionsPerServer: cap, maxPooledClientsPerServer: cap };
  // --expose-gc: the memory figures below are taken after a full GC (live JS state, not garbage).
  const platform = await ChildPlatform.start({ ...options, gatewayLimits: limits } as typeof options, null, ['--expose-gc']);
  console.log(
    `idle sessions: ${SESSIONS} TLS sessions through the gateway, ${RATE}/s at most, ${IN_FLIGHT} logging in at once at most, deadline ${DEADLINE_MS / 1000} s`,
  );
  console.log(`gateway limits: ${JSON.stringify(limits)}; RLIMIT_NOFILE ${nofile} (this process and the platform's)`);
  const id = await platform.call<number>({ cmd: 'createServer', name: SERVER, login: ADMIN, password: PASSWORD });
  await platform.call({ cmd: 'allowLoopback', name: SERVER });
  const refused = flags['no-pool'] ? null : await setPoolMode(apiTarget(options.dataDir), SERVER, 'transaction', POOL_SIZE);
  if (refused) {
    console.log(`idle sessions: SKIPPED: transaction pooling could not be set (${refused}).`);
    console.log('Without a pool every session holds a server backend: run with --no-pool --sessions 150 to try the client machinery alone.');
    await platform.stop();
    return;
  }
  console.log(flags['no-pool'] ? 'pool: none (--no-pool)' : `pool: transaction, size ${POOL_SIZE}`);
  const ca = readFileSync(platformPaths(options.dataDir).caCert, 'utf8');

  const memBefore = await platform.call<NodeJS.MemoryUsage>({ cmd: 'memory' });
  const rssBefore = vmRssMiB(platform.pid);
  const clients: pg.Client[] = [];
  const failures = new Map<string, number>();
  let inFlight = 0;
  let failedInARow = 0;
  const started = Date.now();
  const deadline = started + DEADLINE_MS;
  const open = async (): Promise<void> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: platform.gatewayPort,
      user: `${ADMIN}@${SERVER}`,
      password: PASSWORD,
      database: 'postgres',
      ssl: { ca, servername: `${SERVER}.${options.domain}` },
      connectionTimeoutMillis: 30_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      clients.push(client);
      failedInARow = 0;
    } catch (err) {
      const e = err as Error & { code?: string };
      const key = `${e.code ?? 'no sqlstate'}: ${e.message}`;
      failures.set(key, (failures.get(key) ?? 0) + 1);
      failedInARow++;
      void client.end().catch(() => undefined);
    }
  };
  let next = started;
  let lastReport = started;
  let attempts = 0;
  while (attempts < SESSIONS && Date.now() < deadline && failedInARow < 50) {
    if (inFlight >= IN_FLIGHT || Date.now() < next) {
      await new Promise((r) => setTimeout(r, 2));
      continue;
    }
    next += 1000 / RATE;
    attempts++;
    inFlight++;
    void open().finally(() => inFlight--);
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      console.log(`  ${fixed((lastReport - started) / 1000, 0)} s: ${clients.length} open, gateway RSS ${fixed(vmRssMiB(platform.pid), 0)} MiB`);
    }
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  const openSeconds = (Date.now() - started) / 1000;
  if (failedInARow >= 50) console.log('  stopped: 50 logins failed in a row');
  if (Date.now() >= deadline) console.log('  stopped: deadline reached');

  await new Promise((r) => setTimeout(r, 2000)); // idle: the pool gives connections back
  const mem = await platform.call<NodeJS.MemoryUsage>({ cmd: 'memory' });
  const rss = vmRssMiB(platform.pid);
  const [row] = await platform.call<{ n: string }[]>({
    cmd: 'query',
    id,
    sql: `select count(*) n from pg_stat_activity where usename = '${ADMIN}'`,
  });
  const backends = Number(row?.n);
  const sample = [...clients].sort(() => Math.random() - 0.5).slice(0, 100);
  const answers = await Promise.all(
    sample.map((c) =>
      c.query('select 1 as one').then(
        (r) => r.rows[0]?.one === 1,
        () => false,
      ),
    ),
  );
  const ok = answers.filter(Boolean).length;

  console.log('');
  console.log(`sessions open: ${clients.length} of ${SESSIONS} in ${fixed(openSeconds, 1)} s (${fixed(clients.length / openSeconds, 0)} logins/s)`);
  for (const [k, n] of failures) console.log(`  failed ×${n}: ${k}`);
  console.log(
    `gateway RSS (VmRSS of the platform process): ${fixed(rss, 0)} MiB, ${fixed(rssBefore, 0)} MiB before the sessions (${fixed((1024 * (rss - rssBefore)) / Math.max(1, clients.length), 1)} KiB per session more)`,
  );
  const perSession = (k: 'heapUsed' | 'external') => fixed((mem[k] - memBefore[k]) / 1024 / Math.max(1, clients.length), 1);
  console.log(
    `  of which V8 heap in use ${fixed(mem.heapUsed / 1048576, 0)} MiB (${perSession('heapUsed')} KiB per session more), ` +
      `external (Buffers, native) ${fixed(mem.external / 1048576, 0)} MiB (${perSession('external')} KiB per session more), after a full GC; ` +
      'the rest of the RSS is native: OpenSSL and socket state, the allocator',
  );
  console.log(`server backends of ${ADMIN} (pg_stat_activity): ${backends}`);
  console.log(`select 1 on ${sample.length} random sessions: ${ok} answered`);
  if (!flags['no-pool']) {
    const pools = await poolSummary(apiTarget(options.dataDir), SERVER).catch((err: Error) => `(${err.message})`);
    console.log(`pool (GET /servers/${SERVER}/pool): ${pools === null ? 'no such route' : pools}`);
  }
  console.log(`load client RSS (this process): ${fixed(process.memoryUsage().rss / 1048576, 0)} MiB`);
  console.log(
    `goals: ${SESSIONS} sessions (${clients.length}): ${goal(clients.length >= SESSIONS)}; RSS ≤ 1 GiB (${fixed(rss, 0)} MiB): ${goal(rss <= 1024)}; ` +
      `backends ≤ ${POOL_SIZE} (${backends}): ${goal(backends <= POOL_SIZE)}; 100 random sessions answer (${ok}): ${goal(ok === sample.length)}`,
  );
  console.log(`idle sessions=${clients.length} rss_mib=${fixed(rss, 0)} backends=${backends} sample_ok=${ok}/${sample.length}`);

  for (let i = 0; i < clients.length; i += 500) await Promise.all(clients.slice(i, i + 500).map((c) => c.end().catch(() => undefined)));
  await platform.stop();
});
