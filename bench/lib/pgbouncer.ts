// PgBouncer for the comparison leg: session pooling, TLS to the client with a certificate from
// the platform CA, SCRAM-SHA-256 against the role's verifier (auth_file; PgBouncer then logs in
// to the server with the ClientKey from the client's proof, as the gateway does), and the
// server reached over its Unix socket. PgBouncer refuses to run as root: it runs as the
// platform's service account, which owns the socket directory and the files it reads.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { OsAccount } from '../../src/host/os-user.js';
import { stoppableChild } from './cleanup.js';
import { waitForPort } from './ports.js';
import { writeOwned, type TlsFiles } from './tls-files.js';

export const PGBOUNCER_CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'];

export function findPgBouncer(): string | null {
  return PGBOUNCER_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

export interface PgBouncer {
  readonly port: number;
  /** PgBouncer's own process (single-threaded), for its CPU time in /proc. */
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

const quoteAuth = (s: string) => `"${s.replace(/"/g, '""')}"`;

export async function startPgBouncer(opts: {
  binary: string;
  dir: string;
  account: OsAccount;
  port: number;
  socketDir: string;
  /** The server's port: names its socket, .s.PGSQL.<port>. */
  serverPort: number;
  database: string;
  user: string;
  /** The role's rolpassword: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>. */
  scramVerifier: string;
  tls: TlsFiles;
  poolSize: number;
  /** Default session; a transaction-mode instance keeps its files apart (`pgbouncer-transaction.*`). */
  poolMode?: 'session' | 'transaction';
}): Promise<PgBouncer> {
  const mode = opts.poolMode ?? 'session';
  const name = mode === 'session' ? 'pgbouncer' : `pgbouncer-${mode}`;
  const authFile = path.join(opts.dir, `${name}-users.txt`);
  const ini = path.join(opts.dir, `${name}.ini`);
  const logFile = path.join(opts.dir, `${name}.log`);
  writeOwned(authFile, `${quoteAuth(opts.user)} ${quoteAuth(opts.scramVerifier)}\n`, opts.account);
  writeOwned(logFile, '', opts.account);
  writeOwned(
    ini,
    [
      '[databases]',
      `${opts.database} = host=${opts.socketDir} port=${opts.serverPort} dbname=${opts.database}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${opts.port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${authFile}`,
      `pool_mode = ${mode}`,
      'max_client_conn = 500',
      `default_pool_size = ${opts.poolSize}`,
      'client_tls_sslmode = require',
      `client_tls_cert_file = ${opts.tls.certFile}`,
      `client_tls_key_file = ${opts.tls.keyFile}`,
      'server_tls_sslmode = disable',
      `logfile = ${logFile}`,
      '',
    ].join('\n'),
    opts.account,
  );

  const child: ChildProcess = spawn(opts.binary, ['-q', ini], {
    uid: opts.account.uid,
    gid: opts.account.gid,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    stdio: 'ignore',
  });
  const { stop } = stoppableChild(child, 'stop pgbouncer');
  const logTail = () => readFileSync(logFile, 'utf8').trim().split('\n').slice(-10).join('\n');
  try {
    await waitForPort(opts.port, 10_000, () => (child.exitCode !== null || child.signalCode !== null ? `pgbouncer exited during start:\n${logTail()}` : null));
  } catch (err) {
    await stop();
    throw err;
  }
  return { port: opts.port, pid: child.pid!, logFile, stop };
}
