// Finds the PostgreSQL server binaries on this machine: never one hard-coded version.
import { existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export interface PgBinaries {
  readonly dir: string;
  readonly majorVersion: number;
  /** Where the server loads libraries from (Debian: /usr/lib/postgresql/N/lib). */
  readonly libDir: string;
  bin(name: 'postgres' | 'initdb' | 'pg_ctl' | 'pg_basebackup' | 'psql' | 'pg_controldata'): string;
}

const MIN_MAJOR = 15;

function versionOf(dir: string): number | null {
  try {
    const out = execFileSync(path.join(dir, 'postgres'), ['--version'], { encoding: 'utf8' });
    const m = /(\d+)(?:\.\d+)?/.exec(out.replace(/^[^\d]*/, ''));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function candidates(): string[] {
  const out: string[] = [];
  if (process.env.PGWARDEN_PG_BINDIR) out.push(process.env.PGWARDEN_PG_BINDIR);
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) out.push(path.join(debianRoot, v, 'bin'));
  }
  try {
    out.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim());
  } catch {
    /* no pg_config on PATH */
  }
  return out;
}

let cached: PgBinaries | null = null;

export function findPgBinaries(): PgBinaries {
  if (cached) return cached;
  for (const dir of candidates()) {
    if (!existsSync(path.join(dir, 'postgres')) || !existsSync(path.join(dir, 'initdb'))) continue;
    const major = versionOf(dir);
    if (major === null || major < MIN_MAJOR) continue;
    let libDir = path.join(dir, '..', 'lib');
    try {
      libDir = execFileSync(path.join(dir, 'pg_config'), ['--pkglibdir'], { encoding: 'utf8' }).trim();
    } catch {
      /* no pg_config beside the server: Debian's layout */
    }
    cached = { dir, majorVersion: major, libDir, bin: (name) => path.join(dir, name) };
    return cached;
  }
  throw new Error(
    `No PostgreSQL ${MIN_MAJOR} or newer server found. Install it (Debian: apt-get install postgresql) ` + 'or set PGWARDEN_PG_BINDIR to its bin directory.',
  );
}
