// A minimal streaming tar reader that writes a data directory: what pg_basebackup -Ft emits
// (ustar, GNU long names 'L'/'K', pax 'x'/'g' headers, base-256 sizes). No tar package is
// installed, and this needs only regular files and directories. Entries are written under
// `destDir` only: absolute paths, '..', links, devices and FIFOs are refused. Files are 0600 and
// directories 0700, owned by `owner` (what PostgreSQL requires of its data directory).
import { chownSync, mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { BackupArchiveFormatError } from './errors.js';

export interface ExtractOptions {
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Called with the running count of bytes written to files. */
  readonly onBytes?: (bytes: number) => void;
}

export interface ExtractResult {
  readonly files: number;
  readonly directories: number;
  readonly bytes: number;
}

const BLOCK = 512;

/** Pulls exact byte counts from an async iterable of buffers. */
class ByteSource {
  private buf = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private done = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Up to `max` bytes (at least 1 unless the source ended: then an empty buffer). */
  async some(max: number): Promise<Buffer> {
    while (this.buf.length === 0 && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = Buffer.from(r.value);
    }
    const out = this.buf.subarray(0, max);
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  async exactly(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const b = await this.some(n - have);
      if (b.length === 0) throw new BackupArchiveFormatError('the archive ends in the middle of an entry');
      parts.push(b);
      have += b.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  async drain(): Promise<void> {
    while ((await this.some(1 << 20)).length > 0) {
      /* read to the end so an authenticated stream can check its final chunk */
    }
  }
}

function cstring(b: Buffer): string {
  const i = b.indexOf(0);
  return b.subarray(0, i < 0 ? b.length : i).toString('utf8');
}

function octal(b: Buffer, what: string): number {
  if (b[0]! & 0x80) {
    // GNU base-256: big-endian, first byte's high bit set.
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
    n += (b[0]! & 0x7f) * 256 ** (b.length - 1);
    if (!Number.isSafeInteger(n)) throw new BackupArchiveFormatError(`${what} too large`);
    return n;
  }
  const s = cstring(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new BackupArchiveFormatError(`invalid ${what} field '${s}'`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = octal(h.subarray(148, 156), 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(32, pos);
    if (sp < 0) break;
    const len = Number(data.subarray(pos, sp).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > data.length) throw new BackupArchiveFormatError('invalid pax header');
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** A relative path inside the archive, checked: never absolute, never '..'. */
function safeRelative(name: string): string | null {
  const clean = name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if (clean === '' || clean === '.') return null; // the root itself
  if (clean.startsWith('/') || clean.includes('\0')) throw new BackupArchiveFormatError(`refusing absolute path '${name}'`);
  const parts = clean.split('/');
  if (parts.some((p) => p === '..' || p === '' || p === '.')) throw new BackupArchiveFormatError(`refusing path '${name}'`);
  return parts.join(path.sep);
}

const MAX_META_BYTES = 1 << 20;

export async function extractTar(source: AsyncIterable<Buffer>, destDir: string, o: ExtractOptions = {}): Promise<ExtractResult> {
  const src = new ByteSource(source);
  const made = new Set<string>();
  const ensureDir = (rel: string) => {
    const parts = rel.split(path.sep);
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join(path.sep);
      if (made.has(sub)) continue;
      const abs = path.join(destDir, sub);
      try {
        mkdirSync(abs, { mode: 0o700 });
        if (o.owner) chownSync(abs, o.owner.uid, o.owner.gid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      made.add(sub);
    }
  };
  let files = 0;
  let directories = 0;
  let bytes = 0;
  let longName: string | null = null;
  let pax = new Map<string, string>();
  for (;;) {
    const h = await src
      .some(BLOCK)
      .then(async (first) => (first.length === 0 ? first : first.length === BLOCK ? first : Buffer.concat([first, await src.exactly(BLOCK - first.length)])));
    if (h.length === 0) throw new BackupArchiveFormatError('the archive ends without its end-of-archive marker');
    if (h.every((x) => x === 0)) {
      await src.drain();
      return { files, directories, bytes };
    }
    if (!checksumOk(h)) throw new BackupArchiveFormatError('bad tar header checksum');
    const type = String.fromCharCode(h[156]!);
    let size = octal(h.subarray(124, 136), 'size');
    if (pax.has('size')) size = Number(pax.get('size'));
    if (!Number.isSafeInteger(size) || size < 0) throw new BackupArchiveFormatError('invalid entry size');
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const ustar = h.subarray(257, 262).toString('latin1') === 'ustar';
    const prefix = ustar ? cstring(h.subarray(345, 500)) : '';
    let name = longName ?? pax.get('path') ?? (prefix ? `${prefix}/${cstring(h.subarray(0, 100))}` : cstring(h.subarray(0, 100)));

    if (type === 'L' || type === 'x' || type === 'g' || type === 'K') {
      if (size > MAX_META_BYTES) throw new BackupArchiveFormatError('metadata entry too large');
      const data = (await src.exactly(padded)).subarray(0, size);
      if (type === 'L') longName = cstring(data);
      else if (type === 'x') pax = parsePax(data);
      continue; // 'g' (global) and 'K' (long link names) carry nothing we use
    }
    longName = null;
    pax = new Map();

    if (type === '5') {
      const rel = safeRelative(name);
      if (rel) ensureDir(rel);
      directories++;
      if (padded) await src.exactly(padded);
      continue;
    }
    if (type !== '0' && type !== '\0' && type !== '7') {
      const what = type === '2' ? 'symbolic link' : type === '1' ? 'hard link' : `entry of type '${type}'`;
      throw new BackupArchiveFormatError(`refusing ${what} '${name}' (tablespaces and links are not supported)`);
    }
    const rel = safeRelative(name);
    if (!rel) throw new BackupArchiveFormatError(`file entry without a name`);
    name = rel;
    const dir = path.dirname(rel);
    if (dir !== '.') ensureDir(dir);
    const abs = path.join(destDir, rel);
    const fh = await open(abs, 'wx', 0o600);
    try {
      let left = size;
      while (left > 0) {
        const chunk = await src.some(Math.min(left, 1 << 20));
        if (chunk.length === 0) throw new BackupArchiveFormatError('the archive ends in the middle of a file');
        await fh.write(chunk);
        left -= chunk.length;
        bytes += chunk.length;
        o.onBytes?.(bytes);
      }
      if (o.owner) await fh.chown(o.owner.uid, o.owner.gid);
    } finally {
      await fh.close();
    }
    if (padded > size) await src.exactly(padded - size);
    files++;
  }
}
