// One PostgreSQL cluster on this host: initdb, start, stop, and a supervisor that restarts a
// postmaster that died. Used for the catalog and for every managed server. A cluster listens
// on no TCP port: only on a Unix socket in a directory only the cluster's own OS user can enter.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { EventEmitter } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findPgBinaries } from '../host/pg-binaries.js';
import type { OsAccount } from '../host/os-user.js';

const execFileAsync = promisify(execFile);

export interface ClusterOptions {
  readonly dataDir: string;
  readonly socketDir: string;
  readonly account: OsAccount;
  /** Extra lines for the platform-owned configuration file (after the defaults). */
  readonly settings?: Record<string, string | number | boolean>;
  /** pg_hba.conf lines after `local all all scram-sha-256` (e.g. the maintenance role's
   * replication line for base backups). */
  readonly hbaLines?: readonly string[];
}

export interface ClusterEvents {
  /** The postmaster died without being asked to; the supervisor is restarting it. */
  crashed: [info: { code: number | null; signal: string | null }];
  restarted: [];
  restartFailed: [error: Error];
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

function quote(v: string | number | boolean): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return `'${v.replace(/'/g, "''")}'`;
}

export class Cluster extends EventEmitter<ClusterEvents> {
  private child: ChildProcess | null = null;
  private stopping = false;
  private exited: Promise<void> | null = null;
  private restarts = 0;

  constructor(readonly options: ClusterOptions) {
    super();
  }

  get socketDir(): string {
    return this.options.socketDir;
  }
  get pid(): number | null {
    return this.child?.pid ?? null;
  }
  get running(): boolean {
    return this.child !== null;
  }
  get initialized(): boolean {
    return existsSync(path.join(this.options.dataDir, 'PG_VERSION'));
  }

  /** initdb with SCRAM only and checksums; the bootstrap superuser's password comes from a file. */
  async init(superuser: string, password: string): Promise<void> {
    const { dataDir, account } = this.options;
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chownSync(dataDir, account.uid, account.gid);
    chmodSync(dataDir, 0o700);
    // The password file lives inside the new data dir's parent only for the few ms initdb reads it.
    const pwfile = path.join(path.dirname(dataDir), `.initdb-pw-${process.pid}-${Date.now()}`);
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    chownSync(pwfile, account.uid, account.gid);
    try {
      await execFileAsync(
        findPgBinaries().bin('initdb'),
        ['-D', dataDir, '-U', superuser, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--data-checksums', '-E', 'UTF8', '--locale=C', '--no-instructions'],
        { uid: account.uid, gid: account.gid, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } },
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
    this.writeConfig();
  }

  /** (Re)writes the platform-owned configuration: included last, so it wins. */
  writeConfig(extra: Record<string, string | number | boolean> = {}): void {
    const { dataDir, socketDir, account } = this.options;
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: '',
      unix_socket_directories: socketDir,
      unix_socket_permissions: '0700',
      password_encryption: 'scram-sha-256',
      ssl: false,
      logging_collector: true,
      log_directory: 'log',
      log_filename: 'postgresql-%Y-%m-%d.log',
      log_file_mode: '0600',
      shared_buffers: '32MB',
      max_connections: 100,
      ...this.options.settings,
      ...extra,
    };
    const conf = Object.entries(settings)
      .map(([k, v]) => `${k} = ${k === 'unix_socket_permissions' ? String(v) : quote(v)}`)
      .join('\n');
    const file = path.join(dataDir, 'pgwarden.conf');
    writeFileSync(file, `# Written by pgwarden. Do not edit: it is rewritten on every start.\n${conf}\n`, { mode: 0o600 });
    chownSync(file, account.uid, account.gid);
    const main = path.join(dataDir, 'postgresql.conf');
    const text = readFileSync(main, 'utf8');
    if (!text.includes("include = 'pgwarden.conf'")) {
      writeFileSync(main, `${text}\ninclude = 'pgwarden.conf'\n`);
    }
    // Only SCRAM over the Unix socket: no trust line, no TCP line.
    const hba = path.join(dataDir, 'pg_hba.conf');
    const lines = ['# Written by pgwarden: SCRAM over the Unix socket only.', 'local all all scram-sha-256', ...(this.options.hbaLines ?? [])];
    writeFileSync(hba, `${lines.join('\n')}\n`, { mode: 0o600 });
    chownSync(hba, account.uid, account.gid);
  }

  private prepareSocketDir(): void {
    const { socketDir, account } = this.options;
    mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    chownSync(socketDir, account.uid, account.gid);
    chmodSync(socketDir, 0o700);
  }

  /** Stops a postmaster left running by a platform that died (kill -9), before starting anew. */
  private async stopLeftover(): Promise<void> {
    const pidFile = path.join(this.options.dataDir, 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) return;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return; // not running: PostgreSQL removes the stale file itself
    }
    if (!cmd.includes(this.options.dataDir)) return;
    process.kill(pid, 'SIGINT');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (Date.now() < deadline && existsSync(`/proc/${pid}`)) await sleep(50);
  }

  async start(): Promise<void> {
    if (this.child) return;
    await this.stopLeftover();
    this.prepareSocketDir();
    this.stopping = false;
    await this.spawnPostmaster();
  }

  private async spawnPostmaster(): Promise<void> {
    const { dataDir, account } = this.options;
    const child = spawn(findPgBinaries().bin('postgres'), ['-D', dataDir], {
      uid: account.uid,
      gid: account.gid,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 16_384) stderr += d.toString();
    });
    this.child = child;
    let abandoned = false;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = null;
        resolve();
        if (!this.stopping && !abandoned) this.onCrash(code, signal);
      });
    });
    try {
      await this.waitReady(child, () => stderr);
    } catch (err) {
      abandoned = true;
      child.kill('SIGKILL');
      await this.exited;
      throw err;
    }
  }

  private async waitReady(child: ChildProcess, stderr: () => string): Promise<void> {
    const pidFile = path.join(this.options.dataDir, 'postmaster.pid');
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`PostgreSQL exited during start: ${stderr().trim().slice(-2000)}`);
      }
      try {
        const lines = readFileSync(pidFile, 'utf8').split('\n');
        if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return;
      } catch {
        /* not written yet */
      }
      await sleep(20);
    }
    throw new Error('PostgreSQL did not become ready in time');
  }

  private onCrash(code: number | null, signal: string | null): void {
    this.emit('crashed', { code, signal });
    this.scheduleRestart();
  }

  /** Restarts with backoff until it works or the cluster is stopped (backends of a killed
   * postmaster may hold shared memory for a moment, so the first try can fail). */
  private scheduleRestart(): void {
    const delay = Math.min(5_000, 100 * 2 ** Math.min(this.restarts, 6));
    this.restarts++;
    setTimeout(() => {
      if (this.stopping || this.child) return;
      this.spawnPostmaster().then(
        () => {
          this.restarts = 0;
          this.emit('restarted');
        },
        (err: Error) => {
          this.emit('restartFailed', err);
          this.scheduleRestart();
        },
      );
    }, delay).unref();
  }

  /** Fast shutdown: rolls back open transactions, disconnects clients, checkpoints. */
  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (!child) return;
    child.kill('SIGINT');
    const done = this.exited;
    const timer = setTimeout(() => child.kill('SIGQUIT'), STOP_TIMEOUT_MS);
    await done;
    clearTimeout(timer);
  }

  /** Removes the data directory and the socket directory. The cluster must be stopped. */
  destroy(): void {
    if (this.child) throw new Error('cannot remove a running cluster');
    rmSync(this.options.dataDir, { recursive: true, force: true });
    rmSync(this.options.socketDir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
