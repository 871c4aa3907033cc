// The "direct" leg: the managed server itself, also reachable over TLS on a loopback TCP port
// while the benchmark runs. The platform stops the server's postmaster (its catalog state stays
// Ready); the bench then runs a postmaster on the same data dir with the same configuration
// files, adding only command-line overrides: listen_addresses=127.0.0.1, port=<free port>,
// ssl=on with a certificate from the platform CA, and hba_file pointing at a bench-owned file
// (`hostssl all all 127.0.0.1/32 scram-sha-256` + `local all all scram-sha-256`).
// The Unix socket is named after the port (.s.PGSQL.<port>); a symlink .s.PGSQL.5432 to it in
// the server's socket directory keeps the gateway (and the platform's maintenance pool) reaching
// the same postmaster, so direct, PgBouncer and the gateway serve side by side and runs can be
// interleaved. Nothing the platform wrote is changed: stop() removes the symlink, and
// `ManagedServers.start` brings the server back exactly as it was.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, symlinkSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { findPgBinaries } from '../../src/host/pg-binaries.js';
import type { OsAccount } from '../../src/host/os-user.js';
import { onCleanup } from './cleanup.js';
import { writeOwned, type TlsFiles } from './tls-files.js';

export interface DirectServer {
  readonly port: number;
  /** The postmaster's pid: its CPU time and its children's (lib/proc-cpu.ts serverCpuMs). */
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startDirectServer(opts: {
  dataDir: string;
  socketDir: string;
  benchDir: string;
  account: OsAccount;
  port: number;
  tls: TlsFiles;
}): Promise<DirectServer> {
  const hba = path.join(opts.benchDir, 'direct_hba.conf');
  writeOwned(
    hba,
    '# pgwarden bench: TLS + SCRAM on loopback, SCRAM on the socket\n' + 'hostssl all all 127.0.0.1/32 scram-sha-256\nlocal all all scram-sha-256\n',
    opts.account,
  );
  const args = [
    '-D',
    opts.dataDir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `port=${opts.port}`,
    '-c',
    'ssl=on',
    '-c',
    `ssl_cert_file=${opts.tls.certFile}`,
    '-c',
    `ssl_key_file=${opts.tls.keyFile}`,
    '-c',
    `hba_file=${hba}`,
    '-c',
    `unix_socket_directories=${opts.socketDir}`,
  ];
  const child: ChildProcess = spawn(findPgBinaries().bin('postgres'), args, {
    uid: opts.account.uid,
    gid: opts.account.gid,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 16_384) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alias = path.join(opts.socketDir, '.s.PGSQL.5432');
  let aliased = false;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    if (aliased) rmSync(alias, { force: true });
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown
      const timer = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const unregister = onCleanup('stop direct postmaster', stop);

  const pidFile = path.join(opts.dataDir, 'postmaster.pid');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`direct postmaster exited during start: ${stderr.trim().slice(-2000)}`);
    }
    if (existsSync(pidFile)) {
      const lines = readFileSync(pidFile, 'utf8').split('\n');
      if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('direct postmaster did not become ready in 60 s');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (opts.port !== 5432) {
    if (existsSync(alias) || isSymlink(alias)) {
      await stop();
      throw new Error(`${alias} exists: is the platform's own postmaster still running?`);
    }
    symlinkSync(`.s.PGSQL.${opts.port}`, alias);
    aliased = true;
  }
  return { port: opts.port, pid: child.pid!, stop };
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
