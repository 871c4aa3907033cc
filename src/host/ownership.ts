// Gives a directory tree to the OS user that runs its PostgreSQL when it belongs to another:
// a data dir made when every server ran as one shared account, or a data dir that was moved
// (its users are named after where it is). Symbolic links are changed, never followed.
import { lchownSync, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { OsAccount } from './os-user.js';

/** True when something had to change. Only the top is looked at to decide. */
export function adoptTree(dir: string, account: OsAccount): boolean {
  if (!account.dropsPrivileges) return false;
  const st = lstatSync(dir);
  if (st.uid === account.uid && st.gid === account.gid) return false;
  const walk = (p: string): void => {
    const s = lstatSync(p);
    if (s.uid !== account.uid || s.gid !== account.gid) lchownSync(p, account.uid, account.gid);
    if (s.isDirectory()) for (const name of readdirSync(p)) walk(path.join(p, name));
  };
  walk(dir);
  return true;
}
