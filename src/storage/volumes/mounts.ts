// Mount table and command helpers shared by the volume backends: /proc/self/mountinfo parsed
// (pure), a mount-point lookup, and a runner for mkfs/mount/umount that never sees a key.
import { execFile } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { VolumeError } from './errors.js';

export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/<pid>/mountinfo (see proc(5)): `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({ mountPoint: unescapeOctal(f[4]!), options: f[5]!, fsType: f[sep + 1]!, source: unescapeOctal(f[sep + 2]!) });
  }
  return out;
}

/** The (topmost) mount at exactly `dir`, or null. */
export function mountAt(dir: string): MountEntry | null {
  const want = path.resolve(dir);
  const entries = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((e) => e.mountPoint === want);
  return entries.at(-1) ?? null;
}

const SBIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function toolPath(): string {
  return `${process.env.PATH ?? ''}:${SBIN_PATH}`;
}

/** Absolute path of a program found on PATH (plus the sbin dirs), or null. */
export function findProgram(name: string): string | null {
  for (const dir of toolPath().split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

export class CommandError extends VolumeError {
  constructor(
    readonly command: string,
    readonly code: number | string | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (${code}): ${stderr.trim().slice(-1000) || 'no message'}`);
    this.name = 'CommandError';
  }
}

/** Runs a program with arguments (no shell, no key ever in argv or env). */
export function run(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { PATH: toolPath(), LANG: 'C' }, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
        reject(new CommandError(`${cmd} ${args.join(' ')}`, code, stderr || err.message));
      } else resolve({ stdout, stderr });
    });
  });
}

/** How long close() keeps retrying while files are still being closed before it reports busy. */
export const BUSY_GRACE_MS = 2_000;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
