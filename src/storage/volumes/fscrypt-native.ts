// libc's open/ioctl/close through koffi (prebuilt FFI, nothing compiled): Node.js has no
// ioctl. Each call opens the directory, issues one ioctl on a caller-owned buffer (passed in
// place, no copy) and closes it. Errors carry the errno name.
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { VolumeError } from './errors.js';

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000; // same value on x86-64, arm64 and riscv64 (asm-generic)

interface Libc {
  open: (path: string, flags: number, ...rest: unknown[]) => number;
  ioctl: (fd: number, request: number, ...rest: unknown[]) => number;
  close: (fd: number) => number;
  errno: () => number;
}

let libc: Libc | null = null;

/** Loads koffi and binds libc; throws a VolumeError saying why when it cannot. */
export function loadLibc(): Libc {
  if (libc) return libc;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    const lib = koffi.load('libc.so.6');
    libc = {
      open: lib.func('int open(const char *path, int flags, ...)') as Libc['open'],
      ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)') as Libc['ioctl'],
      close: lib.func('int close(int fd)') as Libc['close'],
      errno: () => koffi.errno(),
    };
    return libc;
  } catch (err) {
    throw new VolumeError(`cannot bind libc's ioctl through koffi: ${(err as Error).message}`, { cause: err });
  }
}

export function errnoName(n: number): string {
  for (const [name, v] of Object.entries(constants.errno)) if (v === n) return name;
  return `errno ${n}`;
}

export class IoctlError extends VolumeError {
  constructor(
    readonly op: string,
    readonly path: string,
    readonly errno: number,
  ) {
    super(`${op} on ${path} failed: ${errnoName(errno)}`);
    this.name = 'IoctlError';
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

/** Opens `path` read-only (a directory is fine), runs one ioctl with `arg` in place, closes. */
export function ioctlOn(path: string, op: string, request: number, arg: Buffer): void {
  const c = loadLibc();
  const fd = c.open(path, O_RDONLY | O_CLOEXEC, 'int', 0);
  if (fd < 0) throw new IoctlError(`open (for ${op})`, path, c.errno());
  try {
    const r = c.ioctl(fd, request, 'void *', arg);
    if (r < 0) throw new IoctlError(op, path, c.errno());
  } finally {
    c.close(fd);
  }
}
