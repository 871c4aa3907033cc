// Checks shared by the backends before they touch anything: a volume id usable in file names,
// the key length, a mount point the owner can reach, and state dirs kept root-only.
import { chmodSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { VolumeError, VolumeKeyLengthError } from './errors.js';
import type { VolumeSpec } from './backend.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export function checkSpec(spec: VolumeSpec): void {
  if (!ID.test(spec.id)) throw new VolumeError(`Invalid volume id '${spec.id}': use 1-63 letters, digits, '-' and '_'.`);
  if (!path.isAbsolute(spec.stateDir) || !path.isAbsolute(spec.mountPoint)) {
    throw new VolumeError(`Volume '${spec.id}': stateDir and mountPoint must be absolute paths.`);
  }
  const a = path.resolve(spec.stateDir);
  const b = path.resolve(spec.mountPoint);
  if (a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`)) {
    throw new VolumeError(`Volume '${spec.id}': stateDir and mountPoint must not contain each other.`);
  }
}

export function checkKey(backend: string, expected: number, key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== expected) throw new VolumeKeyLengthError(backend, expected, Buffer.isBuffer(key) ? key.length : 0);
}

/** stateDir holds ciphertext / images only root may touch: created or tightened to 0700. */
export function prepareStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** The owner needs search permission on every ancestor of the mount point. */
export function assertTraversable(dir: string, owner: { uid: number; gid: number }): void {
  if (owner.uid === 0) return;
  let cur = path.dirname(path.resolve(dir));
  for (;;) {
    const st = statSync(cur);
    const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) {
      throw new VolumeError(`The volume mount point ${dir} is not reachable by uid ${owner.uid}: ${cur} is not searchable by it (chmod o+x ${cur}).`);
    }
    const parent = path.dirname(cur);
    if (parent === cur) return;
    cur = parent;
  }
}

export function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* not empty, missing or still a mount point: leave it */
  }
}
