// An unprivileged OS account to run PostgreSQL as. PostgreSQL refuses to run as root. A platform
// runs each managed server and its catalog as OS users of their own (os-accounts.ts); the one
// shared account here (`pgwarden`, or $PGWARDEN_OS_USER) is for stand-alone clusters: tests and
// benchmarks. Not root: the user it runs as.
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { statSync } from 'node:fs';
import path from 'node:path';

export interface OsAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** True when servers run under another account than the platform's own. */
  readonly dropsPrivileges: boolean;
}

export const SERVICE_USER = process.env.PGWARDEN_OS_USER ?? 'pgwarden';

function lookup(name: string): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

export function serviceAccount(): OsAccount {
  if (process.getuid?.() !== 0) {
    const me = userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid, dropsPrivileges: false };
  }
  let ids = lookup(SERVICE_USER);
  if (!ids) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', SERVICE_USER], {
        stdio: 'pipe',
      });
    } catch {
      /* another platform process may have created it at the same moment: look again */
    }
    ids = lookup(SERVICE_USER);
    if (!ids) throw new Error(`could not create the OS user ${SERVICE_USER}`);
  }
  return { name: SERVICE_USER, ...ids, dropsPrivileges: true };
}

/** Throws a clear error when the account cannot reach `dir` (every ancestor needs search permission). */
export function assertReachable(dir: string, account: OsAccount): void {
  if (!account.dropsPrivileges) return;
  let cur = path.resolve(dir);
  for (;;) {
    const st = statSync(cur);
    const bit = st.uid === account.uid ? 0o100 : st.gid === account.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) {
      throw new Error(
        `The data dir ${dir} is not reachable by the OS user '${account.name}' that runs PostgreSQL: ${cur} is not searchable by it. ` +
          `Choose a data dir under a searchable path, or run: chmod o+x ${cur}`,
      );
    }
    const parent = path.dirname(cur);
    if (parent === cur) return;
    cur = parent;
  }
}
