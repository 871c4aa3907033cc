// Platform benchmark: how long creating a server takes (REST API, POST /servers, which returns
// once the server is Ready), and how long restarting the platform with 10 servers takes
// (platform.stop(), then new Platform(same options).start(), until every server is Ready in the
// catalog snapshot and accepts a login through the gateway), 3 times. create_s and restart10_s
// in the last line are medians.
// Run: npm run bench:platform   (about 10 s on 2 cores; not a timed test, gates nothing)
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { callApi, type ApiTarget } from '../src/cli/api-client.js';
import type { Platform } from '../src/app/platform.js';
import { runBench } from './lib/cleanup.js';
import { benchOptions, benchRoot, clientConfig, gatewayRoundTrip, startPlatform } from './lib/platform-harness.js';
import { fixed, goal, median, seconds, table } from './lib/format.js';

const SERVERS = 10;
const CREATE_GOAL_S = 3;
const RESTART_GOAL_S = 10;
const RESTARTS = 3;
const ADMIN = 'benchadmin';
const PASSWORD = 'Bench-Pass-2024';

const names = Array.from({ length: SERVERS }, (_, i) => `bench-${i + 1}`);

async function allReachable(platform: Platform, ca: string): Promise<void> {
  await Promise.all(
    names.map((server) => gatewayRoundTrip({ port: platform.gateway.port, ca, server, domain: platform.options.domain, user: ADMIN, password: PASSWORD })),
  );
}

/** Polls until every server is Ready in the snapshot and answers `select 1` through the gateway. */
async function waitAllServing(platform: Platform, ca: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const snap = platform.snapshots.snapshot.servers;
    if (names.every((n) => snap.get(n)?.state === 'Ready')) {
      try {
        await allReachable(platform, ca);
        return;
      } catch (err) {
        last = err;
      }
    }
    if (Date.now() > deadline) throw new Error(`servers not all serving after ${timeoutMs} ms: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

await runBench(async () => {
  const root = benchRoot('pgw-bench-platform-');
  const options = benchOptions(path.join(root, 'data'));
  console.log(`platform benchmark: data dir ${options.dataDir}`);

  let t0 = performance.now();
  let { platform, stop } = await startPlatform(options);
  const firstStartMs = performance.now() - t0;
  const cfg = clientConfig(platform);
  const target: ApiTarget = { url: cfg.apiUrl, token: cfg.token, ca: readFileSync(cfg.caFile, 'utf8') };
  const ca = target.ca!;

  // Creates, one after another, through the REST API.
  const createMs: number[] = [];
  for (const name of names) {
    t0 = performance.now();
    const view = await callApi<{ state: string }>(target, 'POST', '/servers', {
      name,
      administratorLogin: ADMIN,
      administratorLoginPassword: PASSWORD,
    });
    createMs.push(performance.now() - t0);
    if (view.state !== 'Ready') throw new Error(`${name} is ${view.state} after create`);
    // The network is deny-by-default: allow loopback (not part of the create time).
    await callApi(target, 'PUT', `/servers/${name}/firewallRules/bench-loopback`, { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
  }
  await waitAllServing(platform, ca, 30_000); // every server serves before the restart

  // Restart with 10 servers, RESTARTS times.
  const restarts: { stopMs: number; startMs: number; servingMs: number; totalMs: number }[] = [];
  const pids = (p: Platform) => names.map((n) => p.servers.postmasterPid(p.snapshots.snapshot.servers.get(n)!.id));
  for (let i = 0; i < RESTARTS; i++) {
    const before = pids(platform);
    t0 = performance.now();
    await stop();
    const stopMs = performance.now() - t0;
    const t1 = performance.now();
    ({ platform, stop } = await startPlatform(options));
    const startMs = performance.now() - t1;
    const t2 = performance.now();
    await waitAllServing(platform, ca, 60_000);
    const servingMs = performance.now() - t2;
    const after = pids(platform);
    if (after.some((pid, k) => pid === null || pid === before[k])) {
      throw new Error(`not every server got a new postmaster: before ${before.join(',')} after ${after.join(',')}`);
    }
    restarts.push({ stopMs, startMs, servingMs, totalMs: performance.now() - t0 });
  }
  await stop();

  const createMedianS = median(createMs) / 1000;
  const createMaxS = Math.max(...createMs) / 1000;
  const restartS = median(restarts.map((r) => r.totalMs)) / 1000;
  const restartMaxS = Math.max(...restarts.map((r) => r.totalMs)) / 1000;

  console.log('');
  console.log(
    table(
      ['step', 'seconds'],
      [
        ['first start (catalog initdb, CA, API, gateway)', seconds(firstStartMs)],
        ...names.map((n, i) => [`create ${n} (POST /servers → Ready; ${i} others running)`, seconds(createMs[i]!)]),
        [`create: median of ${SERVERS}`, fixed(createMedianS)],
        [`create: max of ${SERVERS}`, fixed(createMaxS)],
        ...restarts.flatMap((r, i) => [
          [`restart #${i + 1}: platform.stop() with ${SERVERS} servers`, seconds(r.stopMs)],
          [`restart #${i + 1}: new Platform(same options).start()`, seconds(r.startMs)],
          [`restart #${i + 1}: then until all ${SERVERS} Ready + select 1 through the gateway`, seconds(r.servingMs)],
          [`restart #${i + 1}: total (stop → all ${SERVERS} serving)`, seconds(r.totalMs)],
        ]),
        [`restart: median of ${RESTARTS}`, fixed(restartS)],
        [`restart: max of ${RESTARTS}`, fixed(restartMaxS)],
      ],
    ),
  );
  console.log('');
  console.log(
    `goals: create ≤ ${CREATE_GOAL_S} s (median ${fixed(createMedianS)} s, max ${fixed(createMaxS)} s): ${goal(createMaxS <= CREATE_GOAL_S)}; ` +
      `restart with ${SERVERS} servers ≤ ${RESTART_GOAL_S} s (median ${fixed(restartS)} s, max ${fixed(restartMaxS)} s): ${goal(restartMaxS <= RESTART_GOAL_S)}`,
  );
  console.log(
    `platform create_s=${fixed(createMedianS)} restart10_s=${fixed(restartS)} ` +
      `(goals: create ≤ ${CREATE_GOAL_S} s ${goal(createMedianS <= CREATE_GOAL_S)}, restart10 ≤ ${RESTART_GOAL_S} s ${goal(restartS <= RESTART_GOAL_S)})`,
  );
});
