// Token benchmark, two stages.
// 1. Token verification: verifyAccessToken calls per second with a warm JWKS, for RS256, PS256
//    and ES256 access tokens from a real OpenID Connect provider (oidc-provider over HTTPS on
//    127.0.0.1, support/oidc.ts), on ONE core: this stage runs in a child process under
//    `taskset -c 0`, so the main thread and libuv's pool (where WebCrypto verifies) share one CPU.
//    Beside it, the OpenSSL ceiling: node:crypto's synchronous verify of the same signature.
// 2. Login time (lib/token-login-stage.ts): the added connection time of a token login versus a
//    SCRAM login through the gateway of one real platform (in-process, unpinned, so PostgreSQL
//    and the gateway get every core), with PostgreSQL itself (TLS + SCRAM) as the baseline.
// Run: npm run bench:tokens [-- --logins 300] [--seconds 10] [--no-direct] [--no-login]
// (about 25 s on 2 cores, up to ~50 s with the login caps reached; needs root like the other benches; not a timed test, gates nothing)

import { spawnSync } from 'node:child_process';
import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { IssuerKeys } from '../src/auth/tokens/issuer.js';
import { verifyAccessToken } from '../src/auth/tokens/verify.js';
import { startOidcProvider, type SigningAlgorithm } from '../support/oidc.js';
import { fixed, goal, table } from './lib/format.js';
import { runBench } from './lib/cleanup.js';
import { runLoginStage } from './lib/token-login-stage.js';

const GOAL_PER_SECOND = 20_000;
const RUN_MS = 1500;
const PINNED = 'PGWARDEN_BENCH_PINNED';

const { values: flags } = parseArgs({
  options: {
    /** Logins per leg in the login-time stage, at most. */
    logins: { type: 'string', default: '300' },
    /** Seconds per leg in the login-time stage, at most. */
    seconds: { type: 'string', default: '10' },
    'no-direct': { type: 'boolean', default: false },
    'no-login': { type: 'boolean', default: false },
  },
});

/** Runs the verification stage in a child pinned to CPU 0; false when taskset is missing (run it here instead). */
function verifyStagePinned(): boolean {
  const self = fileURLToPath(import.meta.url);
  const run = spawnSync('taskset', ['-c', '0', process.execPath, self], { stdio: 'inherit', env: { ...process.env, [PINNED]: '1' } });
  if (run.error !== undefined) return false;
  if (run.status !== 0) process.exit(run.status ?? 1);
  return true;
}

/** Calls per second of `op` with `inFlight` calls outstanding at a time, over RUN_MS. */
async function rate(op: () => Promise<unknown>, inFlight: number): Promise<number> {
  let count = 0;
  const deadline = performance.now() + RUN_MS;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await op();
      count++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (count * 1000) / (performance.now() - start);
}

function syncRate(op: () => boolean): number {
  let count = 0;
  const start = performance.now();
  const deadline = start + RUN_MS;
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) if (op()) count++;
  }
  return (count * 1000) / (performance.now() - start);
}

function opensslVerify(token: string, alg: SigningAlgorithm, key: KeyObject): () => boolean {
  const dot = token.lastIndexOf('.');
  const input = Buffer.from(token.slice(0, dot));
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  const options =
    alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : alg === 'PS256' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : key;
  return () => verify('sha256', input, options, signature);
}

async function verificationStage(pinned: boolean): Promise<void> {
  const idp = await startOidcProvider({ clients: [{ clientId: 'bench', oid: '00000000-0000-4000-8000-00000000b001', groups: ['g1', 'g2', 'g3'] }] });
  try {
    const audience = 'api://pgwarden';
    const issuer = new IssuerKeys(idp.issuer, { ca: idp.caPem });
    const keys = idp.publicKeys();
    const rows: string[][] = [];
    const results = new Map<SigningAlgorithm, number>();
    for (const alg of ['RS256', 'PS256', 'ES256'] as const) {
      const token = await idp.issueToken({ clientId: 'bench', audience, alg });
      const op = (): Promise<unknown> => verifyAccessToken(token, { issuer, audience });
      for (let i = 0; i < 2000; i++) await op(); // warm: JWKS fetched, keys imported, JIT settled
      const serial = await rate(op, 1);
      const concurrent = await rate(op, 32);
      const publicKey = createPublicKey({ key: (alg === 'ES256' ? keys.ec : keys.rsa) as JsonWebKey, format: 'jwk' });
      const ceiling = syncRate(opensslVerify(token, alg, publicKey));
      const best = Math.max(serial, concurrent);
      results.set(alg, best);
      rows.push([
        alg,
        String(token.length),
        Math.round(serial).toLocaleString('en'),
        Math.round(concurrent).toLocaleString('en'),
        Math.round(ceiling).toLocaleString('en'),
        goal(best >= GOAL_PER_SECOND),
      ]);
    }
    const fetches = idp.jwksFetches;
    console.log(`\ntoken verifications per second, warm JWKS, ${pinned ? 'one core (taskset -c 0)' : 'UNPINNED (taskset not found): all cores'}`);
    console.log(table(['alg', 'token bytes', '1 in flight', '32 in flight', 'OpenSSL verify only', `goal ≥ ${GOAL_PER_SECOND.toLocaleString('en')}/s`], rows));
    console.log(`JWKS fetches during the run: ${fetches} (the first verification only)`);
    const summary = [...results].map(([alg, n]) => `${alg.toLowerCase()}=${Math.round(n)}/s`).join(' ');
    const verdict = [...results].map(([alg, n]) => `${alg} ${goal(n >= GOAL_PER_SECOND)}`).join(', ');
    console.log(`\ntokens ${summary} (goal ≥ ${GOAL_PER_SECOND}/s on one core: ${verdict})`);
  } finally {
    await idp.close();
  }
}

if (process.env[PINNED] === '1') {
  await verificationStage(true); // the pinned child: stage 1 only
} else {
  if (!verifyStagePinned()) await verificationStage(false); // no taskset: here, unpinned, and say so
  if (!flags['no-login']) {
    await runBench(async () => {
      const maxLogins = Number(flags.logins);
      const maxSeconds = Number(flags.seconds);
      if (!(maxLogins >= 1 && maxSeconds > 0)) throw new Error('--logins must be ≥ 1 and --seconds > 0');
      const r = await runLoginStage({ maxLogins, maxSeconds, rounds: 5, warmup: 10, direct: !flags['no-direct'] });
      const added = r.token.mean - r.scram.mean;
      console.log(
        `\nmean login: token ${fixed(r.token.mean)} ms, scram ${fixed(r.scram.mean)} ms${r.direct ? `, direct ${fixed(r.direct.mean)} ms (gateway scram adds ${fixed(r.scram.mean - r.direct.mean)} ms)` : ''}; ` +
          `p50 token − scram ${fixed(r.token.p50 - r.scram.p50)} ms`,
      );
      console.log(`token login added ms=${fixed(added)} vs scram`);
    });
  }
}
