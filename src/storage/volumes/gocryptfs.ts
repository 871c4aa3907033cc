// gocryptfs backend (FUSE): AES-256-GCM per 4 KiB block, encrypted names, for hosts whose kernel
// lacks ext4 encryption. The ciphertext dir is `${stateDir}/${id}.cipher`; the volume is served
// by a gocryptfs daemon (its own session, so it outlives a platform restart) whose PID we keep
// (in memory and in `${id}.gocryptfs.pid`, root-only) so close() stops only that process.
//
// The password is the hex of the raw 32-byte key, given on stdin (never argv, env or a file).
// scrypt cost: -scryptn 10 (N = 1024) instead of gocryptfs' default 16. scrypt exists to slow
// the guessing of human passwords; ours is 256 random bits, which no amount of guessing finds,
// so a high cost would only add ~1 s of CPU and 64 MiB of memory to every create and open.
//
// Mount options: -allow_other so the server's OS user can use it (we run as root, so
// /etc/fuse.conf's user_allow_other is not needed); gocryptfs then adds default_permissions, so
// the kernel checks modes, and as root it creates files with the caller's uid/gid.
// -nodev -nosuid -noexec: a data directory needs none of them. -nosyslog -q: messages go to
// `${id}.gocryptfs.log` (a file, not a pipe, so the daemon outlives a platform restart).
//
// close() while files are open: `fusermount3 -u` refuses (device busy), the volume stays mounted
// and fully usable, close() throws VolumeBusyError; call it again once the files are closed.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chownSync } from 'node:fs';
import path from 'node:path';
import { VolumeBusyError, VolumeError, VolumeStateError, WrongVolumeKeyError } from './errors.js';
import { hexPassword, parseGocryptfsConf, passwordUnlocks } from './gocryptfs-config.js';
import { BUSY_GRACE_MS, CommandError, findProgram, mountAt, run, sleep, toolPath } from './mounts.js';
import { assertTraversable, checkKey, checkSpec, prepareStateDir, rmdirIfEmpty } from './spec-checks.js';
import type { ProbeResult, VolumeBackend, VolumeSpec } from './backend.js';
import { tryTestVolume } from './probe-volume.js';

const NAME = 'gocryptfs';
const KEY_BYTES = 32;
const MOUNT_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;
const EXIT_PASSWORD_INCORRECT = 12; // gocryptfs' documented exit code
const HOW_TO_FIX =
  'Install gocryptfs and FUSE 3 (Debian/Ubuntu: apt-get install gocryptfs fuse3), make /dev/fuse available ' +
  '(modprobe fuse; in a container: --device /dev/fuse --cap-add SYS_ADMIN) and run pgwarden as root.';

/** Alive and not a zombie (the daemon is reparented to PID 1, which may be slow to reap it). */
function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/** The gocryptfs daemon started by `parentPid` for `cipher`. */
function findDaemon(parentPid: number, cipher: string): number | null {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = cmdlineOf(Number(name));
    if (path.basename(cmd[0] ?? '') === 'gocryptfs' && cmd.includes(`-notifypid=${parentPid}`) && cmd.includes(cipher)) return Number(name);
  }
  return null;
}

/** gocryptfs mount options weighed by measurement (bench/storage-volumes.ts --variants). */
export type GocryptfsTuning = 'noprealloc' | 'sharedstorage' | 'serialize_reads' | 'kernel_cache';

export interface GocryptfsOptions {
  readonly tuning?: readonly GocryptfsTuning[];
}

/** Weighed by measurement (bench/storage-volumes.ts --variants, targets in turns, bench/README.md):
 * on TPC-B none of -noprealloc, -kernel_cache, -serialize_reads beat the plain mount beyond the
 * noise of this machine (0.62-0.75 of plain each); -sharedstorage costs (0.40, and 0.18 on
 * select-only: no inode cache). So none is used; the knob stays for the bench. */
export const GOCRYPTFS_DEFAULTS: Required<GocryptfsOptions> = { tuning: [] };

export class GocryptfsBackend implements VolumeBackend {
  readonly name = 'gocryptfs' as const;
  readonly keyBytes = KEY_BYTES;
  private probed: Promise<ProbeResult> | null = null;
  private readonly pids = new Map<string, number>();
  private readonly tuning: readonly GocryptfsTuning[];

  constructor(options: GocryptfsOptions = {}) {
    this.tuning = options.tuning ?? GOCRYPTFS_DEFAULTS.tuning;
  }

  cipherDir(spec: VolumeSpec): string {
    return path.join(spec.stateDir, `${spec.id}.cipher`);
  }
  private logFile(spec: VolumeSpec): string {
    return path.join(spec.stateDir, `${spec.id}.gocryptfs.log`);
  }
  private pidFile(spec: VolumeSpec): string {
    return path.join(spec.stateDir, `${spec.id}.gocryptfs.pid`);
  }

  probe(): Promise<ProbeResult> {
    this.probed ??= this.runProbe();
    return this.probed;
  }

  private async runProbe(): Promise<ProbeResult> {
    const no = (reason: string): ProbeResult => ({ ok: false, reason, howToFix: HOW_TO_FIX });
    if (process.platform !== 'linux') return no('gocryptfs volumes need Linux.');
    if (process.getuid?.() !== 0) return no("mounting FUSE with allow_other for the server's OS user needs root.");
    if (!existsSync('/dev/fuse')) return no('/dev/fuse is missing: the kernel has no FUSE or the container does not expose it.');
    if (!findProgram('gocryptfs')) return no('gocryptfs is not installed.');
    if (!findProgram('fusermount3') && !findProgram('fusermount')) return no('fusermount3 (fuse3) is not installed.');
    const failed = await tryTestVolume(this, { name: 'gocryptfs', sizeBytes: 0, keyBytes: KEY_BYTES, notOpen: 'a test volume was not mounted after create.' });
    return failed === null ? { ok: true } : no(failed);
  }

  /** True when this volume's ciphertext dir is mounted at mountPoint; throws when something else is. */
  private mounted(spec: VolumeSpec): boolean {
    const m = mountAt(spec.mountPoint);
    if (!m) return false;
    if (m.fsType !== 'fuse.gocryptfs' || m.source !== path.resolve(this.cipherDir(spec))) {
      throw new VolumeStateError(`Volume '${spec.id}': ${spec.mountPoint} already has another filesystem mounted (${m.fsType} from ${m.source}).`);
    }
    return true;
  }

  /** Spawns gocryptfs with the password on stdin; wipes the password once written. */
  private feed(args: readonly string[], key: Buffer, stdio: { out: number | 'pipe'; detached: boolean }) {
    const child = spawn(findProgram('gocryptfs') ?? 'gocryptfs', args, {
      stdio: ['pipe', stdio.out, stdio.out],
      detached: stdio.detached,
      env: { PATH: toolPath(), LANG: 'C' },
    });
    const password = hexPassword(key);
    child.stdin!.on('error', () => undefined); // gocryptfs exited before reading: its exit code says why
    child.stdin!.end(password, () => password.fill(0));
    child.once('exit', () => password.fill(0));
    return child;
  }

  private async init(spec: VolumeSpec, key: Buffer): Promise<void> {
    const child = this.feed(['-init', '-q', '-scryptn', '10', '--', this.cipherDir(spec)], key, { out: 'pipe', detached: false });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c) => resolve(c));
    });
    if (code !== 0) throw new VolumeError(`gocryptfs -init for volume '${spec.id}' failed (${code}): ${out.trim().slice(-1000)}`);
  }

  private async mount(spec: VolumeSpec, key: Buffer): Promise<void> {
    mkdirSync(spec.mountPoint, { recursive: true, mode: 0o711 });
    const log = openSync(this.logFile(spec), 'a', 0o600);
    const cipher = this.cipherDir(spec);
    let child;
    try {
      // Not -fg: gocryptfs' own daemon mode returns only once the filesystem is fully served.
      // (With -fg, the mount shows in /proc/mounts before go-fuse's start-up "epoll hack" has
      // run, and a request arriving in that window - our mkdir - deadlocked it in tests.)
      const tuning = this.tuning.map((t) => `-${t}`);
      child = this.feed(['-allow_other', '-nosyslog', '-q', '-nodev', '-nosuid', '-noexec', ...tuning, '--', cipher, spec.mountPoint], key, {
        out: log,
        detached: true,
      });
    } finally {
      closeSync(log);
    }
    const parent = child;
    const code = await new Promise<number | string>((resolve) => {
      const timer = setTimeout(() => {
        parent.kill('SIGKILL');
        resolve('timeout');
      }, MOUNT_TIMEOUT_MS);
      parent.once('error', (e) => {
        clearTimeout(timer);
        resolve(`cannot start gocryptfs: ${e.message}`);
      });
      parent.once('exit', (c, sig) => {
        clearTimeout(timer);
        resolve(c ?? `signal ${sig}`);
      });
    });
    if (code === EXIT_PASSWORD_INCORRECT) throw new WrongVolumeKeyError(spec.id, NAME);
    if (code !== 0)
      throw new VolumeError(
        `gocryptfs could not mount volume '${spec.id}' (${code === 'timeout' ? `not mounted within ${MOUNT_TIMEOUT_MS / 1000} s` : code}): ${this.logTail(spec)}`,
      );
    if (!this.mounted(spec))
      throw new VolumeError(`gocryptfs reported volume '${spec.id}' mounted but ${spec.mountPoint} is not a mount: ${this.logTail(spec)}`);
    // The daemon is the process gocryptfs re-executed with -notifypid=<the parent we started>.
    const pid = findDaemon(parent.pid!, cipher);
    if (pid !== null) {
      this.pids.set(path.resolve(spec.mountPoint), pid);
      writeFileSync(this.pidFile(spec), `${pid}\n`, { mode: 0o600 });
    }
  }

  private logTail(spec: VolumeSpec): string {
    try {
      return readFileSync(this.logFile(spec), 'utf8').trim().slice(-1000) || 'no message';
    } catch {
      return 'no message';
    }
  }

  /** The PID of the gocryptfs process serving this volume, checked against /proc (never a stranger). */
  private daemonPid(spec: VolumeSpec): number | null {
    let pid = this.pids.get(path.resolve(spec.mountPoint)) ?? null;
    if (pid === null) {
      try {
        pid = Number(readFileSync(this.pidFile(spec), 'utf8').trim()) || null;
      } catch {
        return null;
      }
    }
    if (pid === null) return null;
    const cmd = cmdlineOf(pid);
    return pidAlive(pid) && path.basename(cmd[0] ?? '') === 'gocryptfs' && cmd.includes(this.cipherDir(spec)) ? pid : null;
  }

  private verifyKey(spec: VolumeSpec, key: Buffer): void {
    const conf = parseGocryptfsConf(readFileSync(path.join(this.cipherDir(spec), 'gocryptfs.conf'), 'utf8'));
    const password = hexPassword(key);
    try {
      if (passwordUnlocks(conf, password) === false) throw new WrongVolumeKeyError(spec.id, NAME);
    } finally {
      password.fill(0);
    }
  }

  async create(spec: VolumeSpec, key: Buffer): Promise<void> {
    checkSpec(spec);
    checkKey(NAME, KEY_BYTES, key);
    const cipher = this.cipherDir(spec);
    if (existsSync(cipher)) throw new VolumeStateError(`Volume '${spec.id}' already exists (${cipher}).`);
    prepareStateDir(spec.stateDir);
    mkdirSync(spec.mountPoint, { recursive: true, mode: 0o711 });
    assertTraversable(spec.mountPoint, spec.owner);
    if (mountAt(spec.mountPoint)) throw new VolumeStateError(`Volume '${spec.id}': ${spec.mountPoint} is already a mount point.`);
    // The ciphertext root's mode is what the mount root shows: 0711 lets the owner reach `data`.
    mkdirSync(cipher, { mode: 0o711 });
    try {
      await this.init(spec, key);
      await this.mount(spec, key);
      const data = path.join(spec.mountPoint, 'data');
      mkdirSync(data, { mode: 0o700 });
      chownSync(data, spec.owner.uid, spec.owner.gid);
    } catch (err) {
      await this.close(spec).catch(() => undefined);
      rmSync(cipher, { recursive: true, force: true });
      throw err;
    }
  }

  async open(spec: VolumeSpec, key: Buffer): Promise<void> {
    checkSpec(spec);
    checkKey(NAME, KEY_BYTES, key);
    if (!existsSync(path.join(this.cipherDir(spec), 'gocryptfs.conf'))) {
      throw new VolumeStateError(`Volume '${spec.id}' does not exist (no ${this.cipherDir(spec)}/gocryptfs.conf).`);
    }
    this.verifyKey(spec, key); // also when mounted: "open with that key" must be that key
    if (this.mounted(spec)) {
      if (await this.isOpen(spec)) return;
      // Mounted but its daemon died ("transport endpoint is not connected"): clear and remount.
      await run('umount', ['-l', spec.mountPoint]).catch(() => undefined);
    }
    await this.mount(spec, key);
  }

  async close(spec: VolumeSpec): Promise<void> {
    checkSpec(spec);
    const pid = this.daemonPid(spec);
    if (this.mounted(spec)) {
      const fusermount = findProgram('fusermount3') ? 'fusermount3' : 'fusermount';
      // A server's last processes (e.g. PostgreSQL's logger, which outlives the postmaster by a
      // few ms) may still be closing files: retry for a short grace before calling it busy.
      const deadline = Date.now() + BUSY_GRACE_MS;
      for (;;) {
        try {
          await run(fusermount, ['-u', spec.mountPoint]);
          break;
        } catch (err) {
          if (!(err instanceof CommandError && /busy/i.test(err.stderr))) throw err;
          if (Date.now() > deadline) {
            throw new VolumeBusyError(
              spec.id,
              `${fusermount} -u ${spec.mountPoint}: device or resource busy (files are open on it; it stays mounted and usable)`,
            );
          }
          await sleep(100);
        }
      }
    }
    if (pid !== null) {
      // Unmounting makes gocryptfs exit; wait for it, then stop it (only it) if it lingers.
      const deadline = Date.now() + EXIT_TIMEOUT_MS;
      while (pidAlive(pid) && Date.now() < deadline) await sleep(20);
      if (this.daemonPid(spec) === pid) process.kill(pid, 'SIGTERM');
    }
    this.pids.delete(path.resolve(spec.mountPoint));
    rmSync(this.pidFile(spec), { force: true });
  }

  async destroy(spec: VolumeSpec): Promise<void> {
    checkSpec(spec);
    await this.close(spec);
    rmSync(this.cipherDir(spec), { recursive: true, force: true });
    rmSync(this.logFile(spec), { force: true });
    rmdirIfEmpty(spec.stateDir);
    rmdirIfEmpty(spec.mountPoint);
  }

  async isOpen(spec: VolumeSpec): Promise<boolean> {
    checkSpec(spec);
    if (!this.mounted(spec)) return false;
    try {
      statSync(path.join(spec.mountPoint, 'data'));
      return true;
    } catch {
      return false; // ENOTCONN: the daemon is gone
    }
  }
}
