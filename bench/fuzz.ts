// npm run fuzz: the pre-auth fuzz campaign (issue 15). Not part of npm test.
// Phase 1, in process: ≥ 10 million generated and mutated inputs through the parsers an
//   anonymous client reaches before authentication: startup packets (StartupMessage,
//   SSLRequest, GSSENCRequest, CancelRequest, lying lengths) with routing and the startup policy,
//   the framed readers in random chunks with the SASL and password body parsers, PROXY v1/v2
//   (families, commands, TLVs, SSL sub-TLVs, CRC32C; fed whole and as a prefix), SASLInitialResponse
//   with SCRAM client-first, and whole SCRAM exchanges (client-first then client-final, real and
//   mock verifiers, with and without channel binding). A crash is any exception other than the
//   parser's own typed error; an invariant is a broken bound or a wrong answer; a hang is an
//   input over the time budget (or one that never returns: the watchdog stops the worker).
// Phase 2, over the network: a real platform and gateway; malformed connections (startup
//   packets, SSLRequest + garbage, SASL after a valid startup, PROXY headers on the
//   private-link listener), then psql must still be answered. An XX000 answer (internal error
//   in the gateway) counts as a crash; a connection neither answered nor closed within the
//   timeout counts as a hang.
// Run: npm run fuzz [-- --inputs 10000000 --seed 1 --connections 20000 --no-network]
// Last line: fuzz inputs=N time_s=T crashes=0 invariants=0 hangs=0 ... network connections=M ...
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runBench } from './lib/cleanup.js';
import { runInProcess } from './fuzz/in-process.js';
import { runNetwork } from './fuzz/network.js';
import { table } from './lib/format.js';

const { values: flags } = parseArgs({
  options: {
    inputs: { type: 'string', default: '10000000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    'budget-ms': { type: 'string', default: '1000' },
    connections: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '32' },
    network: { type: 'boolean', default: true },
    'no-network': { type: 'boolean', default: false },
  },
});
const MiB = (n: number) => (n / 1024 / 1024).toFixed(1);

await runBench(async () => {
  const seed = Number(flags.seed);
  const inputs = Number(flags.inputs);
  const budgetMs = Number(flags['budget-ms']);
  const findingsDir = `/tmp/pgwarden-fuzz-${seed}`;
  mkdirSync(findingsDir, { recursive: true });
  console.log(
    `fuzz: seed ${seed} (replay with --seed ${seed}), ${inputs.toLocaleString('en')} inputs, budget ${budgetMs} ms per input, findings in ${findingsDir}`,
  );

  let lastPrint = 0;
  const t0 = Date.now();
  const p1 = await runInProcess({
    seed,
    inputs,
    budgetMs,
    hangMs: 10_000,
    findingsDir,
    progress: (done) => {
      if (Date.now() - lastPrint < 10_000) return;
      lastPrint = Date.now();
      console.log(`  ${done.toLocaleString('en')} inputs, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    },
  });
  const wallS = (Date.now() - t0) / 1000;
  if (!p1.result)
    throw new Error(`the fuzz worker ended without a result: ${p1.workerError ?? (p1.hang ? `hang in target ${p1.hang.targetIndex}` : 'unknown')}`);
  const r = p1.result;
  const sum = (k: 'inputs' | 'crashes' | 'invariants' | 'slow' | 'accepted' | 'typedErrors') => r.stats.reduce((n, s) => n + s[k], 0);
  console.log('');
  console.log(
    table(
      ['target', 'inputs', 'accepted', 'typed error', 'crashes', 'invariants', 'over budget', 'max ms', 'slowest alone ms', 'µs/input'],
      r.stats.map((s) => [
        s.name,
        s.inputs.toLocaleString('en'),
        s.accepted.toLocaleString('en'),
        s.typedErrors.toLocaleString('en'),
        String(s.crashes),
        String(s.invariants),
        String(s.slow),
        s.maxMs.toFixed(2),
        s.slowestAloneMs.toFixed(3),
        ((s.totalMs * 1000) / s.inputs).toFixed(2),
      ]),
    ),
  );
  for (const f of r.findings.slice(0, 10))
    console.log(`\nFINDING ${f.kind} in ${f.target}: ${f.error}\n${f.stack}\ninput ${f.inputHex.slice(0, 400)} run seed ${f.runSeed}`);
  const crashes = sum('crashes');
  const invariants = sum('invariants');
  const hangs = sum('slow') + (p1.hang ? 1 : 0);
  console.log(
    `\nin process: ${sum('inputs').toLocaleString('en')} inputs in ${wallS.toFixed(1)} s (${Math.round(sum('inputs') / wallS).toLocaleString('en')}/s), crashes ${crashes}, invariants ${invariants}, hangs ${hangs}; ` +
      `worker heap after GC ${MiB(r.heapBefore)} → ${MiB(r.heapAfter)} MiB; process RSS ${MiB(p1.rssBefore)} → peak ${MiB(p1.rssPeak)} → ${MiB(p1.rssAfter)} MiB`,
  );

  let networkLine = 'network skipped';
  let networkFailed = false;
  if (flags.network && !flags['no-network']) {
    const n = await runNetwork({ seed, connections: Number(flags.connections), concurrency: Number(flags.concurrency) });
    networkLine = `network connections=${n.connections} time_s=${n.seconds.toFixed(1)} fatal=${n.fatal} closed_silent=${n.silent} answered_then_closed=${n.other} internal_errors=${n.internalErrors} hangs=${n.hangs} malformed_answers=${n.malformed} psql_after=${n.psqlAfter ? 'ok' : 'FAILED'} rss_mib=${MiB(n.rssBefore)}→${MiB(n.rssAfter)}`;
    networkFailed = n.internalErrors > 0 || n.hangs > 0 || n.malformed > 0 || !n.psqlAfter;
    console.log(`\n${networkLine}`);
    for (const [reason, count] of Object.entries(n.denied)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12))
      console.log(`  denied ${reason}: ${count}`);
  }
  const heapGrowth = r.heapAfter - r.heapBefore;
  console.log(
    `fuzz inputs=${sum('inputs')} time_s=${wallS.toFixed(1)} crashes=${crashes} invariants=${invariants} hangs=${hangs} heap_growth_mib=${MiB(heapGrowth)} rss_peak_mib=${MiB(p1.rssPeak)} | ${networkLine}`,
  );
  if (crashes || invariants || hangs || networkFailed) throw new Error('the fuzz campaign found problems: see above');
});
