// Runs pgbench against one target and parses what it prints. Connection settings and the
// password go through the environment (PG*), never argv; TLS is required (sslmode=require).
import { spawn } from 'node:child_process';

export interface PgTarget {
  readonly label: string;
  readonly host: string;
  /** Where to connect when `host` is a name to send as SNI only (libpq's hostaddr). */
  readonly hostaddr?: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export interface PgbenchResult {
  readonly tps: number;
  /** pgbench's own "latency average" (ms). */
  readonly latencyMs: number;
  /** clients / tps, in ms: the mean time per transaction, from the full-precision tps. */
  readonly latencyFromTpsMs: number;
  readonly transactions: number;
  readonly failed: number;
  /** "initial connection time" (persistent) or "average connection time" (-C), ms. */
  readonly connectionMs: number | null;
  readonly output: string;
}

function env(t: PgTarget): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C',
    PGHOST: t.host,
    ...(t.hostaddr !== undefined ? { PGHOSTADDR: t.hostaddr } : {}),
    PGPORT: String(t.port),
    PGUSER: t.user,
    PGPASSWORD: t.password,
    PGDATABASE: t.database,
    PGSSLMODE: 'require',
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'pgw-bench', // 'pgwarden…' names are the platform's own: the gateway refuses them
  };
}

export function runPgbench(t: PgTarget, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', args, { env: env(t), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`pgbench ${args.join(' ')} against ${t.label} failed (${code ?? signal}):\n${out.trim().slice(-2000)}`));
    });
  });
}

function num(out: string, re: RegExp): number | null {
  const m = re.exec(out);
  return m ? Number(m[1]) : null;
}

export function parsePgbench(out: string, clients: number): PgbenchResult {
  const tps = num(out, /^tps = ([\d.]+)/m);
  const latencyMs = num(out, /^latency average = ([\d.]+) ms/m);
  const transactions = num(out, /^number of transactions actually processed: (\d+)/m);
  if (tps === null || latencyMs === null || transactions === null) throw new Error(`cannot parse pgbench output:\n${out}`);
  return {
    tps,
    latencyMs,
    latencyFromTpsMs: (1000 * clients) / tps,
    transactions,
    failed: num(out, /^number of failed transactions: (\d+)/m) ?? 0,
    connectionMs: num(out, /^(?:initial|average) connection time = ([\d.]+) ms/m),
    output: out,
  };
}

export interface SelectOnlyRun {
  readonly clients: number;
  readonly threads: number;
  readonly seconds: number;
  /** A new connection (TLS + SCRAM) per transaction: pgbench -C. */
  readonly connectEach: boolean;
  /** Offered transactions per second over all clients (pgbench -R); unset: as fast as they go. */
  readonly rate?: number;
}

/** pgbench -S (built-in select-only script) for a fixed duration. */
export async function selectOnly(t: PgTarget, run: SelectOnlyRun): Promise<PgbenchResult> {
  const args = ['-S', '-n', '-c', String(run.clients), '-j', String(run.threads), '-T', String(run.seconds)];
  if (run.connectEach) args.push('-C');
  if (run.rate !== undefined) args.push('-R', String(run.rate));
  const out = await runPgbench(t, args, (run.seconds + 60) * 1000);
  const r = parsePgbench(out, run.clients);
  if (r.failed > 0) throw new Error(`${r.failed} failed transactions against ${t.label}:\n${out}`);
  return r;
}

/** pgbench -i -s SCALE (tables created by the target's user). */
export async function initialize(t: PgTarget, scale: number): Promise<void> {
  await runPgbench(t, ['-i', '-q', '-s', String(scale)], 120_000);
}
