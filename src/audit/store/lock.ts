// One writer per store directory: a LOCK file created exclusively, holding the writer's pid.
// A lock whose pid is not running (or is this process, from a previous open it did not close)
// is stale and taken over; a pid reused by an unrelated process after a crash blocks until the
// operator removes the file, and the error says so.
import { open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { AuditLockError, systemCode } from './errors.js';
import { LOCK_NAME } from './files.js';

const held = new Set<string>();

export interface DirectoryLock {
  release(): Promise<void>;
}

export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  const file = path.resolve(dir, LOCK_NAME);
  if (held.has(file)) throw new AuditLockError(`the audit store ${dir} is already open in this process`);
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      held.add(file);
      return {
        async release() {
          held.delete(file);
          await unlink(file).catch(() => undefined);
        },
      };
    } catch (err) {
      if (systemCode(err) !== 'EEXIST' || attempt > 0) {
        throw new AuditLockError(`cannot lock the audit store ${dir}: ${systemCode(err) ?? String(err)}`);
      }
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new AuditLockError(`the audit store ${dir} is locked by running process ${pid} (remove ${file} if that is not a pgwarden writer)`);
    }
    await unlink(file).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return systemCode(err) === 'EPERM';
  }
}
