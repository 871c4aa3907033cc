// Login time: how long a new node-postgres connection takes, one after another (no concurrency),
// each over a new TCP connection and a full TLS handshake (no session resumption). A login is
// timed from `new pg.Client` until connect() resolves (TCP + TLS + startup + authentication +
// the server's backend start, i.e. ReadyForQuery), then `select 1` and end() complete it (also
// timed, as "login + select 1 + end"). Legs alternate in rounds, the order rotating each round,
// so drift and noise on a small machine fall on every leg alike.
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { onCleanup } from './cleanup.js';

export interface LoginTarget {
  readonly label: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly ssl: ConnectionOptions;
  /** current_user a login must end up as (checked during the warm-up). */
  readonly expectRole: string;
}

export interface LoginSample {
  readonly connectMs: number;
  readonly totalMs: number;
}

/** One login: connect (timed), `select 1` (or a current_user check), end. Throws if it fails. */
export async function loginOnce(t: LoginTarget, check = false): Promise<LoginSample> {
  const t0 = performance.now();
  const client = new pg.Client({
    host: '127.0.0.1',
    port: t.port,
    user: t.user,
    password: t.password,
    database: 'postgres',
    ssl: t.ssl,
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new Error(`${t.label}: login failed: ${(err as Error).message}`);
  }
  const t1 = performance.now();
  try {
    if (check) {
      const { rows } = await client.query<{ u: string }>('select current_user as u');
      if (rows[0]?.u !== t.expectRole) throw new Error(`${t.label}: logged in as ${rows[0]?.u}, expected ${t.expectRole}`);
    } else {
      await client.query('select 1');
    }
  } finally {
    await client.end();
  }
  return { connectMs: t1 - t0, totalMs: performance.now() - t0 };
}

export interface AlternateOptions {
  /** Logins per leg, at most (over all rounds). */
  readonly maxLogins: number;
  /** Time per leg, at most (over all rounds), ms. */
  readonly maxMs: number;
  readonly rounds: number;
  /** Untimed logins per leg first (the first checks current_user). */
  readonly warmup: number;
}

/** Runs the legs in alternating rounds; returns the samples per leg label. */
export async function alternateLogins(
  targets: readonly LoginTarget[],
  o: AlternateOptions,
  progress: (line: string) => void = () => undefined,
): Promise<Map<string, LoginSample[]>> {
  // On Ctrl-C the cleanup stack runs while this loop is mid-login: first let the login in flight
  // finish and stop here, then the servers behind it go (no session is cut off half set up).
  let interrupted = false;
  let inFlight: Promise<unknown> = Promise.resolve();
  const unregister = onCleanup('finish the login in flight', async () => {
    interrupted = true;
    await inFlight.catch(() => undefined);
  });
  const login = async (t: LoginTarget, check = false): Promise<LoginSample> => {
    if (interrupted) throw Object.assign(new Error('interrupted'), { stack: 'logins interrupted' });
    const p = loginOnce(t, check);
    inFlight = p;
    return p;
  };
  try {
    return await run(targets, o, progress, login);
  } finally {
    unregister();
  }
}

async function run(
  targets: readonly LoginTarget[],
  o: AlternateOptions,
  progress: (line: string) => void,
  login: (t: LoginTarget, check?: boolean) => Promise<LoginSample>,
): Promise<Map<string, LoginSample[]>> {
  for (const t of targets) {
    for (let i = 0; i < o.warmup; i++) await login(t, i === 0);
  }
  const samples = new Map<string, LoginSample[]>(targets.map((t) => [t.label, []]));
  const perRoundLogins = Math.ceil(o.maxLogins / o.rounds);
  const perRoundMs = o.maxMs / o.rounds;
  for (let round = 0; round < o.rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    const line: string[] = [];
    for (const t of order) {
      const mine = samples.get(t.label)!;
      const start = performance.now();
      let n = 0;
      while (n < perRoundLogins && mine.length < o.maxLogins && performance.now() - start < perRoundMs) {
        mine.push(await login(t));
        n++;
      }
      line.push(`${t.label} ${n} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    }
    progress(`  round ${round + 1}/${o.rounds}: ${line.join(', ')}`);
  }
  return samples;
}

export interface Summary {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly min: number;
  readonly max: number;
}

/** Mean and nearest-rank percentiles. */
export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / s.length, p50: rank(50), p95: rank(95), min: s[0]!, max: s[s.length - 1]! };
}
