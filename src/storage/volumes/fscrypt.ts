// fscrypt backend: the kernel's ext4 encryption (v2 policy, AES-256-XTS contents, AES-256-CTS
// names, names padded to 32) on a sparse ext4 image per server, loop-mounted. The fs root stays
// root's (0711, `mkfs -E root_owner=0:0`): only `data`, the encrypted directory, belongs to the
// server's OS user, so nothing the server writes can land outside the encryption.
// The key lives in the filesystem's keyring only while open: FS_IOC_ADD_ENCRYPTION_KEY on open,
// FS_IOC_REMOVE_ENCRYPTION_KEY + umount on close (the loop device goes with it: autoclear).
// The image is served by a loop device with direct I/O (see mount()); images made before with
// `mount -o loop` are the same ext4 and open the same way.
//
// close() while files are open: the kernel removes the key only partly (status flag FILES_BUSY):
// files already open stay readable and writable until closed, nothing new can be opened or
// created in `data`, and the volume stays mounted. close() then throws VolumeBusyError;
// calling close() again once the files are closed finishes the removal and unmounts.
// isOpen() is false in that state (the key is no longer PRESENT).
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, chmodSync, chownSync, statSync, statfsSync } from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
import { VolumeBusyError, VolumeError, VolumeStateError, WrongVolumeKeyError } from './errors.js';
import {
  FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY,
  FSCRYPT_KEY_STATUS_PRESENT,
  FSCRYPT_RAW_KEY_BYTES,
  FS_IOC_ADD_ENCRYPTION_KEY,
  FS_IOC_GET_ENCRYPTION_KEY_STATUS,
  FS_IOC_GET_ENCRYPTION_POLICY_EX,
  FS_IOC_REMOVE_ENCRYPTION_KEY,
  FS_IOC_SET_ENCRYPTION_POLICY,
  addKeyArg,
  addedKeyIdentifier,
  decodeKeyStatus,
  decodePolicyEx,
  encodePolicyV2,
  getPolicyExArg,
  isPgwardenPolicy,
  keyStatusArg,
  removeKeyArg,
  removalStatusFlags,
  type PolicyV2,
} from './fscrypt-ioctl.js';
import { IoctlError, ioctlOn, loadLibc } from './fscrypt-native.js';
import { BUSY_GRACE_MS, CommandError, findProgram, mountAt, run, sleep } from './mounts.js';
import { assertTraversable, checkKey, checkSpec, prepareStateDir, rmdirIfEmpty } from './spec-checks.js';
import type { ProbeResult, VolumeBackend, VolumeSpec } from './backend.js';
import { tryTestVolume } from './probe-volume.js';

const MIN_SIZE = 16 * 1024 * 1024;
const NAME = 'fscrypt';
const HOW_TO_FIX =
  'Use a Linux kernel with ext4 encryption (5.4 or newer, CONFIG_FS_ENCRYPTION; /sys/fs/ext4/features/encryption must exist), ' +
  'install e2fsprogs (apt-get install e2fsprogs), run pgwarden as root with loop devices available ' +
  '(/dev/loop-control; in a container: --privileged, or --device /dev/loop-control plus /dev/loopN devices and CAP_SYS_ADMIN). ' +
  'Or use the gocryptfs backend.';

export interface FscryptOptions {
  /** Loop device with direct I/O (losetup --direct-io=on); false: `mount -o loop` (buffered). */
  readonly directIo?: boolean;
  /** ext4 journal size for images of 1 GiB and more. */
  readonly journalMiB?: number;
}

/** Weighed by measurement (bench/storage-volumes.ts --variants, bench/README.md): direct I/O
 * (fdatasync rate 600-880/s against 230-600/s buffered through the same volume, each page
 * cached once); a 32 MiB journal (128 MiB made no measurable difference; mkfs would write a
 * large one up front on a big image). On a kernel without an accelerated xts(aes) (see
 * /proc/crypto: `xts(ecb(aes-fixed-time))`), the cipher itself bounds the throughput, whatever
 * the loop and ext4 options. */
export const FSCRYPT_DEFAULTS: Required<FscryptOptions> = { directIo: true, journalMiB: 32 };

/** The block size of the filesystem holding the images (1024, 2048 or 4096; else 4096). */
function backingBlockSize(dir: string): number {
  try {
    const b = statfsSync(dir).bsize;
    return b === 1024 || b === 2048 || b === 4096 ? b : 4096;
  } catch {
    return 4096;
  }
}

// ---- ioctl wrappers (synchronous, each on its own fd) ----

function addKey(fsPath: string, key: Buffer): Buffer {
  const arg = addKeyArg(key);
  try {
    ioctlOn(fsPath, 'FS_IOC_ADD_ENCRYPTION_KEY', FS_IOC_ADD_ENCRYPTION_KEY, arg);
    return addedKeyIdentifier(arg);
  } finally {
    arg.fill(0); // it held the raw key
  }
}

/** Returns removal_status_flags; 0 when the key was not there. */
function removeKey(fsPath: string, identifier: Buffer): number {
  const arg = removeKeyArg(identifier);
  try {
    ioctlOn(fsPath, 'FS_IOC_REMOVE_ENCRYPTION_KEY', FS_IOC_REMOVE_ENCRYPTION_KEY, arg);
  } catch (err) {
    if (err instanceof IoctlError && err.code === 'ENOKEY') return 0;
    throw err;
  }
  return removalStatusFlags(arg);
}

function keyStatus(fsPath: string, identifier: Buffer): number {
  const arg = keyStatusArg(identifier);
  ioctlOn(fsPath, 'FS_IOC_GET_ENCRYPTION_KEY_STATUS', FS_IOC_GET_ENCRYPTION_KEY_STATUS, arg);
  return decodeKeyStatus(arg).status;
}

/** The directory's policy; null when it is not encrypted. Works without the key. */
function getPolicy(dir: string): PolicyV2 | null {
  const arg = getPolicyExArg();
  try {
    ioctlOn(dir, 'FS_IOC_GET_ENCRYPTION_POLICY_EX', FS_IOC_GET_ENCRYPTION_POLICY_EX, arg);
  } catch (err) {
    if (err instanceof IoctlError && err.code === 'ENODATA') return null;
    throw err;
  }
  return decodePolicyEx(arg);
}

function setPolicy(dir: string, identifier: Buffer): void {
  ioctlOn(dir, 'FS_IOC_SET_ENCRYPTION_POLICY', FS_IOC_SET_ENCRYPTION_POLICY, encodePolicyV2(identifier));
}

// ---- the backend ----

export class FscryptBackend implements VolumeBackend {
  readonly name = 'fscrypt' as const;
  readonly keyBytes = FSCRYPT_RAW_KEY_BYTES;
  private probed: Promise<ProbeResult> | null = null;
  private readonly options: Required<FscryptOptions>;

  constructor(options: FscryptOptions = {}) {
    this.options = { ...FSCRYPT_DEFAULTS, ...options };
  }

  imagePath(spec: VolumeSpec): string {
    return path.join(spec.stateDir, `${spec.id}.ext4`);
  }
  private dataDir(spec: VolumeSpec): string {
    return path.join(spec.mountPoint, 'data');
  }

  probe(): Promise<ProbeResult> {
    this.probed ??= this.runProbe();
    return this.probed;
  }

  private async runProbe(): Promise<ProbeResult> {
    const no = (reason: string): ProbeResult => ({ ok: false, reason, howToFix: HOW_TO_FIX });
    if (process.platform !== 'linux') return no('fscrypt needs Linux.');
    if (!['x64', 'arm64', 'riscv64'].includes(process.arch) || endianness() !== 'LE') {
      return no(`the fscrypt ioctl encoding is implemented for little-endian x64/arm64/riscv64 only (this is ${process.arch}).`);
    }
    if (process.getuid?.() !== 0) return no('mkfs, loop mounts and the filesystem keyring need root.');
    if (!existsSync('/sys/fs/ext4/features/encryption')) return no('the kernel has no ext4 encryption (/sys/fs/ext4/features/encryption is missing).');
    if (!existsSync('/dev/loop-control')) return no('/dev/loop-control is missing: no loop devices.');
    if (!findProgram('mkfs.ext4')) return no('mkfs.ext4 (e2fsprogs) is not installed.');
    if (!findProgram('mount') || !findProgram('umount') || !findProgram('losetup')) return no('mount, umount or losetup (util-linux) is missing.');
    try {
      loadLibc();
    } catch (err) {
      return no((err as Error).message);
    }
    // A real tiny volume: mkfs, loop mount, add key, set and read the policy, remove, unmount.
    const failed = await tryTestVolume(this, {
      name: 'fscrypt',
      sizeBytes: MIN_SIZE,
      keyBytes: this.keyBytes,
      notOpen: 'a test volume did not report its key present after create.',
    });
    return failed === null ? { ok: true } : no(failed);
  }

  /** True when `mountPoint` has this volume's image mounted; throws when something else is mounted there. */
  private mounted(spec: VolumeSpec): boolean {
    const m = mountAt(spec.mountPoint);
    if (!m) return false;
    const loop = /^\/dev\/(loop\d+)$/.exec(m.source);
    let backing = '';
    if (loop) {
      try {
        backing = readFileSync(`/sys/block/${loop[1]}/loop/backing_file`, 'utf8').trim();
      } catch {
        /* not a loop device any more */
      }
    }
    if (m.fsType !== 'ext4' || backing !== path.resolve(this.imagePath(spec))) {
      throw new VolumeStateError(
        `Volume '${spec.id}': ${spec.mountPoint} already has another filesystem mounted (${m.fsType} from ${m.source}${backing ? ` = ${backing}` : ''}).`,
      );
    }
    return true;
  }

  private async mount(spec: VolumeSpec): Promise<void> {
    mkdirSync(spec.mountPoint, { recursive: true, mode: 0o711 });
    const image = this.imagePath(spec);
    if (!this.options.directIo) {
      // -o loop: util-linux picks a free loop device with autoclear, so umount releases it.
      await run('mount', ['-t', 'ext4', '-o', 'loop,noatime,nosuid,nodev', image, spec.mountPoint]);
      return;
    }
    // Direct I/O: the loop device reads and writes the image with O_DIRECT, so each page is cached
    // once (in the ext4 above) instead of twice, and a flush of the volume is one flush of the
    // image's blocks instead of a write-back through a second page cache. The sector size is the
    // backing filesystem's block size (O_DIRECT needs aligned I/O; else the kernel falls back to
    // buffered I/O, which still works). Images made before (mount -o loop) open the same way.
    const sector = backingBlockSize(spec.stateDir);
    const { stdout } = await run('losetup', ['--find', '--show', '--direct-io=on', '--sector-size', String(sector), image]);
    const dev = stdout.trim();
    if (!/^\/dev\/loop\d+$/.test(dev)) throw new VolumeError(`losetup gave no loop device for ${image}: ${stdout.trim().slice(0, 200)}`);
    try {
      await run('mount', ['-t', 'ext4', '-o', 'noatime,nosuid,nodev', dev, spec.mountPoint]);
    } catch (err) {
      await run('losetup', ['-d', dev]).catch(() => undefined);
      throw err;
    }
    // Detaching a device in use marks it autoclear: umount then releases it, as with -o loop.
    await run('losetup', ['-d', dev]).catch(() => undefined);
  }

  private async unmount(spec: VolumeSpec): Promise<void> {
    const deadline = Date.now() + BUSY_GRACE_MS;
    for (;;) {
      try {
        await run('umount', [spec.mountPoint]);
        break;
      } catch (err) {
        if (!(err instanceof CommandError && /busy/i.test(err.stderr))) throw err;
        if (Date.now() > deadline) {
          throw new VolumeBusyError(spec.id, `umount ${spec.mountPoint}: target is busy (a process has a file or its working directory on it)`);
        }
        await sleep(100);
      }
    }
    await this.detachLoops(spec);
  }

  /** Loop devices still bound to the image (a crash between losetup and mount): detach them. */
  private async detachLoops(spec: VolumeSpec): Promise<void> {
    if (!existsSync(this.imagePath(spec))) return;
    const { stdout } = await run('losetup', ['-j', this.imagePath(spec)]);
    for (const line of stdout.split('\n')) {
      const dev = /^(\/dev\/loop\d+):/.exec(line)?.[1];
      if (dev) await run('losetup', ['-d', dev]).catch(() => undefined);
    }
  }

  private requirePolicy(spec: VolumeSpec): PolicyV2 {
    const p = getPolicy(this.dataDir(spec));
    if (!p || !isPgwardenPolicy(p)) {
      throw new VolumeError(
        `Volume '${spec.id}': ${this.dataDir(spec)} does not carry pgwarden's encryption policy (v2, AES-256-XTS/AES-256-CTS, padding 32): refusing to use it.`,
      );
    }
    return p;
  }

  async create(spec: VolumeSpec, key: Buffer): Promise<void> {
    checkSpec(spec);
    checkKey(NAME, this.keyBytes, key);
    if (!Number.isSafeInteger(spec.sizeBytes) || spec.sizeBytes < MIN_SIZE)
      throw new VolumeError(`Volume '${spec.id}': at least ${MIN_SIZE} bytes, got ${spec.sizeBytes}.`);
    const image = this.imagePath(spec);
    if (existsSync(image)) throw new VolumeStateError(`Volume '${spec.id}' already exists (${image}).`);
    prepareStateDir(spec.stateDir);
    mkdirSync(spec.mountPoint, { recursive: true, mode: 0o711 });
    assertTraversable(spec.mountPoint, spec.owner);
    if (mountAt(spec.mountPoint)) throw new VolumeStateError(`Volume '${spec.id}': ${spec.mountPoint} is already a mount point.`);
    // Sparse: ftruncate allocates nothing; blocks appear as the filesystem writes them.
    const fd = openSync(image, 'wx', 0o600);
    try {
      ftruncateSync(fd, spec.sizeBytes);
    } finally {
      closeSync(fd);
    }
    let mounted = false;
    try {
      // -b: the backing filesystem's block size (4 KiB at most: the page size), so an ext4 block
      // is one aligned block of the image (small filesystems would default to 1 KiB blocks);
      // -m 0: no root reserve (one user); -O encrypt: the ext4 feature flag; root_owner=0:0: the
      // fs root stays root's. -J size: see FSCRYPT_DEFAULTS. Inode tables: mkfs discards the
      // sparse image (punches it), which reads back as zeros, so it marks every group
      // ITABLE_ZEROED and no lazy init thread writes after the mount (lazy_itable_init has
      // nothing left to do; measured: no difference).
      const journal = spec.sizeBytes >= 1024 ** 3 ? ['-J', `size=${this.options.journalMiB}`] : [];
      const block = String(Math.min(4096, backingBlockSize(spec.stateDir)));
      await run('mkfs.ext4', ['-q', '-F', '-b', block, '-m', '0', '-O', 'encrypt', '-E', 'root_owner=0:0', ...journal, image]);
      await this.mount(spec);
      mounted = true;
      chmodSync(spec.mountPoint, 0o711);
      const data = this.dataDir(spec);
      mkdirSync(data, { mode: 0o700 });
      chownSync(data, spec.owner.uid, spec.owner.gid);
      const identifier = addKey(spec.mountPoint, key);
      setPolicy(data, identifier);
      const p = this.requirePolicy(spec);
      if (!p.identifier.equals(identifier)) throw new VolumeError(`Volume '${spec.id}': the policy read back names another key.`);
    } catch (err) {
      if (mounted) await this.unmount(spec).catch(() => undefined);
      rmSync(image, { force: true });
      throw err;
    }
  }

  async open(spec: VolumeSpec, key: Buffer): Promise<void> {
    checkSpec(spec);
    checkKey(NAME, this.keyBytes, key);
    if (!existsSync(this.imagePath(spec))) throw new VolumeStateError(`Volume '${spec.id}' does not exist (no ${this.imagePath(spec)}).`);
    let mountedHere = false;
    if (!this.mounted(spec)) {
      await this.mount(spec);
      mountedHere = true;
    }
    try {
      const policy = this.requirePolicy(spec);
      // Adding the same key again is idempotent for the kernel (one claim per user).
      const identifier = addKey(spec.mountPoint, key);
      if (!identifier.equals(policy.identifier)) {
        removeKey(spec.mountPoint, identifier); // the wrong key never unlocked anything: take it out again
        throw new WrongVolumeKeyError(spec.id, NAME);
      }
    } catch (err) {
      if (mountedHere) await this.unmount(spec).catch(() => undefined);
      throw err;
    }
  }

  async close(spec: VolumeSpec): Promise<void> {
    checkSpec(spec);
    if (!this.mounted(spec)) {
      await this.detachLoops(spec);
      return;
    }
    const policy = getPolicy(this.dataDir(spec));
    if (policy) {
      // A server's last processes (e.g. PostgreSQL's logger, which outlives the postmaster by a
      // few ms) may still be closing files: retry for a short grace before calling it busy.
      const deadline = Date.now() + BUSY_GRACE_MS;
      for (;;) {
        const flags = removeKey(spec.mountPoint, policy.identifier);
        if (!(flags & FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY)) break;
        if (Date.now() > deadline) {
          throw new VolumeBusyError(
            spec.id,
            'files in it are still open, so the kernel removed its key only partly (the open files stay readable until closed, nothing new can be opened) and it stays mounted',
          );
        }
        await sleep(100);
      }
    }
    await this.unmount(spec);
  }

  async destroy(spec: VolumeSpec): Promise<void> {
    checkSpec(spec);
    await this.close(spec);
    rmSync(this.imagePath(spec), { force: true });
    rmdirIfEmpty(spec.stateDir);
    rmdirIfEmpty(spec.mountPoint);
  }

  async isOpen(spec: VolumeSpec): Promise<boolean> {
    checkSpec(spec);
    if (!existsSync(this.imagePath(spec)) || !this.mounted(spec)) return false;
    try {
      const policy = getPolicy(this.dataDir(spec));
      if (!policy) return false;
      return keyStatus(spec.mountPoint, policy.identifier) === FSCRYPT_KEY_STATUS_PRESENT;
    } catch (err) {
      // Unmounted between the check and the ioctls (the volume being locked as its key went
      // out of reach): not open. Anything else is an error.
      if (!this.mounted(spec)) return false;
      throw err;
    }
  }
}

/** For tests: is the directory's encryption policy readable (i.e. is it an fscrypt directory)? */
export function fscryptPolicyOf(dir: string): PolicyV2 | null {
  statSync(dir);
  return getPolicy(dir);
}
