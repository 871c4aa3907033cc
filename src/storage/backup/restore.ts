// Point-in-time restore into a new data directory: choose the newest base backup that completed
// before the target time, decrypt and untar it into a staging directory, then start PostgreSQL
// on it with recovery.signal and a restore_command served by a private archive agent, so it
// replays archived WAL up to the target and promotes. Then stop it and move the staging
// directory into place. Any failure (tampered backup or WAL, missing WAL, PostgreSQL error)
// removes the staging directory: a half-built data directory is never left behind.
//
// The recovery settings go on PostgreSQL's command line (-c), not into its configuration files,
// so the restored directory carries no restore_command or recovery target afterwards; so do
// overrides that keep the recovering server private (no TCP, its own socket dir) and keep it
// from archiving into the source server's archive (archive_mode=off). The caller then makes the
// directory a new managed server (its own configuration, socket, archive agent).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { findPgBinaries } from '../../host/pg-binaries.js';
import { AeadStreamError } from '../../crypto/stream-errors.js';
import type { BackupRepository } from './repository.js';
import { baseStreamAad, decryptStream, defaultKeyAad, loadWrappedKey, type KekProvider, type KeyAadFor } from './cipher.js';
import { baseDataKey, chooseBackup, listBackups, type BackupManifest } from './manifest.js';
import { extractTar } from './tar-extract.js';
import { restoreSettings, startArchiveAgent, type ArchiveAgent } from './wal-archive.js';
import { segmentPosition } from './wal-names.js';
import { BackupError, BackupTamperedError, NoBackupBeforeError, RecoveryFailedError } from './errors.js';
import { throttled, type ProgressFn } from './progress.js';

const execFileAsync = promisify(execFile);

export interface RestoreOptions {
  readonly repo: BackupRepository;
  readonly sourceServerId: string;
  /** Must not exist yet; its parent must be reachable by `owner`. */
  readonly targetDataDir: string;
  /** The OS account the new server runs as. */
  readonly owner: { readonly uid: number; readonly gid: number };
  /** Restore to this time; without it, to the end of the archived WAL. */
  readonly targetTime?: Date;
  readonly kek: KekProvider;
  readonly aadFor?: KeyAadFor;
  readonly onProgress?: ProgressFn;
  /** Where the temporary agent socket and PostgreSQL socket go (default: a new dir under /tmp). */
  readonly runDir?: string;
  /** Bound on the WAL replay (default 1 hour). */
  readonly replayTimeoutMs?: number;
}

export interface RestoreResult {
  readonly backup: BackupManifest;
  readonly dataDir: string;
  readonly walFilesRestored: number;
  /** PostgreSQL's own line about where recovery stopped, when it said. */
  readonly stoppedAt: string | null;
}

export async function restoreToPointInTime(o: RestoreOptions): Promise<RestoreResult> {
  const backup = chooseBackup(await listBackups(o.repo, o.sourceServerId), o.targetTime ?? null);
  if (!backup) throw new NoBackupBeforeError(o.sourceServerId, o.targetTime ?? null);
  const target = path.resolve(o.targetDataDir);
  if (existsSync(target)) throw new BackupError(`The restore target ${target} already exists.`);
  mkdirSync(path.dirname(target), { recursive: true, mode: 0o711 });
  const staging = `${target}.restoring-${randomBytes(4).toString('hex')}`;
  const runDir = o.runDir ?? mkdtempSync('/tmp/pgwr-');
  const ownRunDir = o.runDir === undefined;
  const progress = throttled(o.onProgress);
  let agent: ArchiveAgent | null = null;
  let postmaster: ChildProcess | null = null;
  try {
    mkdirSync(staging, { mode: 0o700 });
    chownSync(staging, o.owner.uid, o.owner.gid);
    await extractBase(o, backup, staging, progress);
    writeFileSync(path.join(staging, 'recovery.signal'), '', { mode: 0o600 });
    chownSync(path.join(staging, 'recovery.signal'), o.owner.uid, o.owner.gid);
    for (const leftover of ['standby.signal', 'postmaster.pid', 'postmaster.opts']) rmSync(path.join(staging, leftover), { force: true });

    // A private agent serving this restore only (and a socket dir only the new server uses).
    chmodSync(runDir, 0o711);
    const pgSocketDir = path.join(runDir, 'pg');
    mkdirSync(pgSocketDir, { mode: 0o700 });
    chownSync(pgSocketDir, o.owner.uid, o.owner.gid);
    const walTotal = await estimateWalFiles(o.repo, o.sourceServerId, backup);
    let walDone = 0;
    agent = await startArchiveAgent({
      socketPath: path.join(runDir, 'agent.sock'),
      owner: o.owner,
      repo: o.repo,
      serverId: o.sourceServerId,
      kek: o.kek,
      aadFor: o.aadFor,
      onEvent: (e) => {
        if (e.type === 'restored') progress({ phase: 'replay', done: ++walDone, total: Math.max(walTotal, walDone), unit: 'wal-files' });
      },
    });
    const settings = restoreSettings({ socketPath: agent.socketPath, targetTime: o.targetTime });
    const overrides: Record<string, string | number | boolean> = {
      listen_addresses: '',
      unix_socket_directories: pgSocketDir,
      unix_socket_permissions: '0700',
      archive_mode: 'off',
      logging_collector: false,
      log_destination: 'stderr',
      hot_standby: true,
      ...settings,
    };
    const args = ['-D', staging, ...Object.entries(overrides).flatMap(([k, v]) => ['-c', `${k}=${typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v)}`])];
    const child = spawn(findPgBinaries().bin('postgres'), args, {
      uid: o.owner.uid,
      gid: o.owner.gid,
      cwd: staging,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    postmaster = child;
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.length > 256_000) log = log.slice(-128_000);
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await waitPromoted(child, staging, o.replayTimeoutMs ?? 3600_000, () => log, agent, o);
    const stoppedAt = /recovery stopping [^\n]*/.exec(log)?.[0] ?? null;
    child.kill('SIGINT'); // fast shutdown: checkpoint, then exit
    await exited;
    postmaster = null;
    if (child.exitCode !== 0) throw new RecoveryFailedError(`PostgreSQL did not shut down cleanly after the restore: ${tail(log)}`);
    renameSync(staging, target);
    progress({ phase: 'done', done: walDone, total: walDone, unit: 'wal-files' });
    return { backup, dataDir: target, walFilesRestored: walDone, stoppedAt };
  } catch (err) {
    if (postmaster && postmaster.exitCode === null && postmaster.signalCode === null) {
      const p = postmaster;
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGQUIT');
      const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }
    rmSync(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await agent?.close();
    if (ownRunDir) rmSync(runDir, { recursive: true, force: true });
  }
}

async function extractBase(o: RestoreOptions, backup: BackupManifest, staging: string, progress: ProgressFn): Promise<void> {
  const object = baseDataKey(backup.serverId, backup.backupId);
  const key = await o.kek.unwrap(loadWrappedKey(backup.wrappedKey), (o.aadFor ?? defaultKeyAad)(backup.serverId, 'base', backup.backupId));
  try {
    const source = await o.repo.get(object);
    const dec = decryptStream(key, baseStreamAad(backup.serverId, backup.backupId));
    await pipeline(source, dec, async (plain: AsyncIterable<Buffer>) => {
      await extractTar(plain, staging, {
        owner: o.owner,
        onBytes: (n) => progress({ phase: 'extract', done: n, total: backup.plaintextBytes, unit: 'bytes' }),
      });
    });
  } catch (err) {
    if (err instanceof AeadStreamError) throw new BackupTamperedError(object, err.message, { cause: err });
    throw err;
  } finally {
    key.fill(0);
  }
}

/** An upper bound on the WAL files a replay may ask for: archived segments from the backup's start. */
async function estimateWalFiles(repo: BackupRepository, serverId: string, backup: BackupManifest): Promise<number> {
  const start = segmentPosition(backup.startWalFile);
  if (start === null) return 0;
  let n = 0;
  for (const obj of await repo.list(`${serverId}/wal`)) {
    const name = path.basename(obj.key).replace(/\.pgwenc$/, '');
    const pos = segmentPosition(name);
    if (pos !== null && pos >= start && /^[0-9A-F]{24}$/.test(name)) n++;
  }
  return n;
}

async function clusterState(dataDir: string): Promise<string | null> {
  try {
    const { stdout } = await execFileAsync(findPgBinaries().bin('pg_controldata'), [dataDir], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
    });
    return /Database cluster state:\s*(.+)/.exec(stdout)?.[1]?.trim() ?? null;
  } catch {
    return null;
  }
}

function tail(log: string): string {
  const lines = log
    .trim()
    .split('\n')
    .filter((l) => /FATAL|PANIC|ERROR/.test(l));
  return (lines.length ? lines : log.trim().split('\n')).slice(-3).join(' | ');
}

async function waitPromoted(child: ChildProcess, dataDir: string, timeoutMs: number, log: () => string, agent: ArchiveAgent, o: RestoreOptions): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const signal = path.join(dataDir, 'recovery.signal');
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const tampered = agent.failures.find((f) => f.error instanceof BackupTamperedError);
      if (tampered) throw tampered.error;
      if (/recovery ended before configured recovery target was reached/.test(log())) {
        throw new RecoveryFailedError(
          `Cannot restore server '${o.sourceServerId}' to ${o.targetTime?.toISOString()}: the WAL archive ends before that time (WAL is archived at least every archive_timeout; try again shortly or choose an earlier time).`,
        );
      }
      const failure = agent.failures.at(-1);
      throw new RecoveryFailedError(`Point-in-time recovery of server '${o.sourceServerId}' failed: ${failure ? failure.error.message : tail(log())}`);
    }
    // Promoted: recovery.signal is gone and the control file says "in production" (the server
    // accepts read-only connections, and drops recovery.signal, before promotion completes).
    if (!existsSync(signal) && (await clusterState(dataDir)) === 'in production') return;
    if (Date.now() > deadline)
      throw new RecoveryFailedError(`Point-in-time recovery of server '${o.sourceServerId}' did not finish within ${Math.round(timeoutMs / 1000)} s.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
