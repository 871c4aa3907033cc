// The few file operations the writer makes, behind an interface so tests can count fsyncs and
// inject failures. nodeIo is the real thing (node:fs/promises).
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export interface AppendFile {
  /** Writes all of data at the end of the file (O_APPEND). On failure a prefix may have been written. */
  append(data: Uint8Array): Promise<void>;
  /** fdatasync(2). */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface AuditIo {
  /** Opens (creating with mode 0600) a file for appending. */
  openAppend(file: string): Promise<AppendFile>;
  /** fsync(2) of a directory, so new and removed entries are durable. */
  syncDirectory(dir: string): Promise<void>;
}

class NodeAppendFile implements AppendFile {
  constructor(private readonly handle: FileHandle) {}

  async append(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done);
      done += bytesWritten;
    }
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

export const nodeIo: AuditIo = {
  async openAppend(file) {
    return new NodeAppendFile(await open(file, 'a', 0o600));
  },
  async syncDirectory(dir) {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/**
 * The same operations as blocking system calls, for the writer's own thread (writer-worker.ts):
 * nothing else waits on that thread, and a write then costs one system call, not a hop through
 * libuv's thread pool and back.
 */
class SyncAppendFile implements AppendFile {
  constructor(private readonly fd: number) {}

  async append(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done);
  }

  async datasync(): Promise<void> {
    fdatasyncSync(this.fd);
  }

  async truncate(length: number): Promise<void> {
    ftruncateSync(this.fd, length);
  }

  async close(): Promise<void> {
    closeSync(this.fd);
  }
}

export const nodeSyncIo: AuditIo = {
  async openAppend(file) {
    return new SyncAppendFile(openSync(file, 'a', 0o600));
  },
  async syncDirectory(dir) {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
};
