// Looks for byte strings in files the way an attacker with the disk would: every regular file
// under a directory without crossing a mount (find -xdev), sparse images included. Images are
// read only where they hold data (lseek SEEK_DATA / SEEK_HOLE through koffi), so a 16 GiB sparse
// volume costs what it stores, not what it could hold.
import { closeSync, existsSync, openSync, readSync, readdirSync, lstatSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const CHUNK = 8 << 20;

type Lseek = (fd: number, offset: number, whence: number) => number | bigint;
let lseek: Lseek | null = null;

function seek(): Lseek {
  if (!lseek) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    lseek = koffi.load('libc.so.6').func('int64_t lseek(int fd, int64_t offset, int whence)') as Lseek;
  }
  return lseek;
}

/** Regular files under `dir` (find DIR -type f); none when `dir` does not exist. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Regular files under `dir` on the same filesystem as `dir` (find DIR -xdev -type f). */
export function filesXdev(dir: string): string[] {
  const dev = statSync(dir).dev;
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = lstatSync(p);
      if (st.dev !== dev) continue; // a mount point: not crossed
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Does `file` contain any of `needles`? Reads only its data extents. */
export function fileContains(file: string, needles: readonly Buffer[]): boolean {
  const longest = Math.max(...needles.map((n) => n.length));
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const buf = Buffer.alloc(CHUNK + longest);
    const at = (offset: number, whence: number) => Number(seek()(fd, offset, whence));
    let pos = 0;
    while (pos < size) {
      const data = at(pos, SEEK_DATA);
      if (data < 0) break; // ENXIO: no data after pos
      const hole = at(data, SEEK_HOLE);
      const end = hole < 0 ? size : hole;
      // Start a little before the extent so a needle across a hole boundary is still seen.
      let cur = Math.max(0, data - longest);
      while (cur < end) {
        const n = readSync(fd, buf, 0, buf.length, cur);
        if (n <= 0) break;
        const view = buf.subarray(0, n);
        if (needles.some((x) => view.includes(x))) return true;
        cur += Math.max(1, n - longest);
      }
      pos = end;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Files under `dir` (not crossing mounts) holding any of `needles`. */
export function filesContaining(dir: string, needles: readonly Buffer[]): string[] {
  return filesXdev(dir).filter((f) => fileContains(f, needles));
}
