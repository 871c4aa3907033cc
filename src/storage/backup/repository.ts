// The backup repository: where encrypted backups and WAL segments are stored. `BackupRepository`
// is a small key/object interface (put/get streams, stat, list, delete) so object storage can
// implement it later; `DirectoryRepository` stores objects as files under one directory.
//
// Layout (keys, '/'-separated), per server:
//   <serverId>/base/<backupId>/base.tar.pgwenc   encrypted tar of the data directory
//   <serverId>/base/<backupId>/manifest.json     written last: its presence marks a complete backup
//   <serverId>/wal/<walFileName>.pgwenc          encrypted WAL segments, .history, .partial files
//   <serverId>/wal/keys/<epoch>.json             wrapped WAL data keys (see wal-keys.ts)
//
// Writes are atomic: a temp file in the same directory, fsync, rename, fsync of the directory.
// A reader never sees a half-written object, and an object acknowledged by put() survives a
// crash. Files are 0600, directories 0700 (the repository belongs to the platform, root).
import { mkdir, open, readdir, rename, rm, stat, rmdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidRepositoryKeyError, RepositoryObjectMissingError } from './errors.js';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly modified: Date;
}

export interface BackupRepository {
  /** Stores `data` under `key`, replacing any object there; resolves once it is durable. If the
   * source stream errors, nothing is stored and the error is rethrown. */
  put(key: string, data: Readable | Buffer): Promise<{ bytes: number }>;
  /** Reads an object. Throws RepositoryObjectMissingError when there is none. */
  get(key: string): Promise<Readable>;
  stat(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix/` (recursive), sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Removes an object; no error when it does not exist. */
  delete(key: string): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/** Validates a key: no absolute paths, no '..', no empty segments. */
export function checkKey(key: string): string[] {
  const parts = key.split('/');
  if (parts.length === 0 || parts.length > 16 || parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')) {
    throw new InvalidRepositoryKeyError(key);
  }
  return parts;
}

const TEMP_MARK = '.tmp-';

export class DirectoryRepository implements BackupRepository {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private file(key: string): string {
    return path.join(this.root, ...checkKey(key));
  }

  async put(key: string, data: Readable | Buffer): Promise<{ bytes: number }> {
    const file = this.file(key);
    const dir = path.dirname(file);
    await this.mkdirs(dir);
    const temp = path.join(dir, `${TEMP_MARK}${path.basename(file)}-${randomBytes(6).toString('hex')}`);
    let bytes = 0;
    // The temp file is created here, before any byte is read: a stream that opens it on its own
    // could create it after a failed source has already been cleaned up.
    const source = Buffer.isBuffer(data) ? Readable.from([data]) : data;
    const fh = await open(temp, 'wx', 0o600);
    try {
      await pipeline(
        source,
        async function* count(chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            bytes += c.length;
            yield c;
          }
        },
        fh.createWriteStream(), // closes fh when it ends or fails
      );
      const written = await open(temp, 'r');
      try {
        await written.sync();
      } finally {
        await written.close();
      }
      await rename(temp, file);
      await syncDir(dir);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return { bytes };
  }

  async get(key: string): Promise<Readable> {
    const file = this.file(key);
    try {
      const fh = await open(file, 'r');
      return fh.createReadStream({ highWaterMark: 1 << 20 }) as unknown as Readable;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new RepositoryObjectMissingError(key);
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await stat(this.file(key));
      return st.isFile() ? { key, size: st.size, modified: st.mtime } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const base = this.file(prefix);
    const out: ObjectInfo[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        if (e.name.startsWith(TEMP_MARK)) continue;
        const p = path.join(dir, e.name);
        const key = `${keyPrefix}/${e.name}`;
        if (e.isDirectory()) await walk(p, key);
        else if (e.isFile()) {
          const st = await stat(p);
          out.push({ key, size: st.size, modified: st.mtime });
        }
      }
    };
    await walk(base, prefix);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const file = this.file(key);
    await rm(file, { force: true });
    // Drop directories left empty, up to the repository root.
    let dir = path.dirname(file);
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  private async mkdirs(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
