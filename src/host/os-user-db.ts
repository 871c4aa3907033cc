// The host's user database, through its own tools (getent, useradd, userdel): look a user up,
// list users, add a system user with its own group (no home, no login), delete one. Several
// platforms on one host may call these at the same moment: a locked passwd file is retried.
import { execFile } from 'node:child_process';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The GECOS field: pgwarden writes who made the user there. */
  readonly comment: string;
}

interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C', LC_ALL: 'C' };
const RETRY_MS = 15_000;

function run(file: string, args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env: ENV, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, stdout, stderr: stderr.trim() });
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function parse(line: string): PasswdEntry | null {
  const f = line.split(':');
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return null;
  return { name: f[0]!, uid, gid, comment: f[4]! };
}

export async function lookupUser(name: string): Promise<PasswdEntry | null> {
  const r = await run('getent', ['passwd', name]);
  if (r.code === 2) return null; // not found
  if (r.code !== 0) throw new Error(`getent passwd ${name} failed (exit ${r.code}): ${r.stderr}`);
  return parse(r.stdout.trim());
}

export async function listUsers(): Promise<PasswdEntry[]> {
  const r = await run('getent', ['passwd']);
  if (r.code !== 0) throw new Error(`getent passwd failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .map(parse)
    .filter((e): e is PasswdEntry => e !== null);
}

/** Locked files: shadow's tools say so and exit 1 (passwd) or 10 (group). */
function locked(r: RunResult): boolean {
  return (r.code === 1 || r.code === 10) && /lock/i.test(r.stderr);
}

/** useradd --system with a group of its own, no home, no login shell. Exit 9: the name is taken
 * (by another process at the same moment, or by someone else: the caller looks and decides). */
export async function addSystemUser(name: string, comment: string): Promise<'added' | 'exists'> {
  const deadline = Date.now() + RETRY_MS;
  for (;;) {
    const r = await run('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      '--comment',
      comment,
      name,
    ]);
    if (r.code === 0) return 'added';
    if (r.code === 9) return 'exists';
    if (!locked(r) || Date.now() > deadline) throw new Error(`could not create the OS user ${name}: useradd exit ${r.code}: ${r.stderr}`);
    await sleep(50 + Math.floor(Math.random() * 100));
  }
}

/** userdel, then its group if userdel left it. A user whose processes are still exiting (exit 8)
 * or a locked file is retried for `waitMs`; a user that is already gone is fine. */
export async function deleteUser(name: string, waitMs = RETRY_MS): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await run('userdel', [name]);
    if (r.code === 0 || r.code === 6) break;
    if (!(r.code === 8 || locked(r)) || Date.now() > deadline) throw new Error(`could not remove the OS user ${name}: userdel exit ${r.code}: ${r.stderr}`);
    await sleep(100);
  }
  const g = await run('getent', ['group', name]);
  if (g.code === 0 && g.stdout.split(':')[3]?.trim() === '') await run('groupdel', [name]);
}
