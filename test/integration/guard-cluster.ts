// Throwaway PostgreSQL clusters for the pgwarden_guard test (guard.test.ts): initdb'd and started
// as an unprivileged OS user, with or without the guard preloaded, and the roles the platform
// creates on a managed server; plus the assertions on refusals and memberships.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findPgBinaries, type PgBinaries } from '../../src/host/pg-binaries.js';

const execFileAsync = promisify(execFile);

export const MAINTENANCE = 'pgwarden_maintenance';
export const MAINTENANCE_PASSWORD = 'Maint-Guard-9x!';
export const ADMIN = 'alice';
export const ADMIN_PASSWORD = 'Alice-Guard-7y!';
export const GRANT_DETAIL = 'Only the platform may grant membership in this role.';

export const binaries: PgBinaries = findPgBinaries();
export interface Account {
  uid: number;
  gid: number;
  name: string;
}

/** PostgreSQL refuses to run as root: as root use `nobody`, otherwise our own account. */
export function osAccount(): Account {
  if (process.getuid?.() !== 0) {
    const me = userInfo();
    return { uid: me.uid, gid: me.gid, name: me.username };
  }
  const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g'), name: 'nobody' };
}

export class TestCluster {
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    root: string,
    readonly name: string,
    private readonly account: Account,
    private readonly preload: string,
  ) {
    this.dataDir = path.join(root, name, 'data');
    this.socketDir = path.join(root, name, 'sock');
    this.logFile = path.join(root, name, 'postgres.log');
  }

  private own(p: string): void {
    chownSync(p, this.account.uid, this.account.gid);
  }

  async init(): Promise<void> {
    const base = path.dirname(this.dataDir);
    mkdirSync(base, { mode: 0o700 });
    this.own(base);
    mkdirSync(this.socketDir, { mode: 0o700 });
    this.own(this.socketDir);
    const pwfile = path.join(base, 'pwfile');
    writeFileSync(pwfile, `${MAINTENANCE_PASSWORD}\n`, { mode: 0o600 });
    this.own(pwfile);
    try {
      await execFileAsync(
        binaries.bin('initdb'),
        ['-D', this.dataDir, '-U', MAINTENANCE, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-instructions'],
        { uid: this.account.uid, gid: this.account.gid, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } },
      );
    } finally {
      rmSync(pwfile, { force: true });
    }
    appendFileSync(
      path.join(this.dataDir, 'postgresql.conf'),
      [
        '',
        "listen_addresses = ''",
        `unix_socket_directories = '${this.socketDir}'`,
        "unix_socket_permissions = '0700'",
        "password_encryption = 'scram-sha-256'",
        `shared_preload_libraries = '${this.preload}'`,
        'shared_buffers = 16MB',
        'max_connections = 20',
        'fsync = off',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(this.dataDir, 'pg_hba.conf'), 'local all all scram-sha-256\n');
  }

  async start(): Promise<void> {
    const log = openSync(this.logFile, 'a', 0o600);
    this.own(this.logFile);
    const child = spawn(binaries.bin('postgres'), ['-D', this.dataDir], {
      uid: this.account.uid,
      gid: this.account.gid,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const hint = this.preload ? ` (is ${this.preload} installed? make -C ext/pgwarden_guard install)` : '';
        throw new Error(`${this.name} cluster exited during start${hint}:\n${this.log().slice(-2000)}`);
      }
      try {
        const lines = readFileSync(pidFile, 'utf8').split('\n');
        if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return;
      } catch {
        /* not written yet */
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${this.name} cluster did not become ready:\n${this.log().slice(-2000)}`);
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Fast shutdown of the postmaster we spawned (by its PID), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
    this.child = null;
  }

  async connect(user: string, password: string, database = 'postgres'): Promise<pg.Client> {
    const client = new pg.Client({ host: this.socketDir, user, password, database, application_name: 'guard-test' });
    await client.connect();
    return client;
  }

  /** What the platform does when it creates a managed server (src/engine/managed-servers.ts). */
  async createPlatformRoles(): Promise<void> {
    const su = await this.connect(MAINTENANCE, MAINTENANCE_PASSWORD);
    try {
      await su.query('create role pgwarden_admin nologin');
      await su.query('grant pg_monitor, pg_signal_backend to pgwarden_admin');
      await su.query('grant all on database postgres to pgwarden_admin');
      await su.query('grant all on schema public to pgwarden_admin');
      await su.query(
        `create role ${ADMIN} login createdb createrole nosuperuser noreplication nobypassrls ` + `in role pgwarden_admin password '${ADMIN_PASSWORD}'`,
      );
    } finally {
      await su.end();
    }
  }
}

export interface Expected {
  code: string;
  message: string;
  detail?: string;
}

/** Runs `sql` and asserts the exact error; nothing the statement did survives (own transaction). */
export async function refused(client: pg.Client, sql: string, expected: Expected): Promise<void> {
  await client.query('begin');
  try {
    await assert.rejects(
      client.query(sql),
      (err: unknown) => {
        const e = err as pg.DatabaseError;
        const actual: Expected = { code: e.code ?? '', message: e.message };
        if (expected.detail !== undefined) actual.detail = e.detail;
        assert.deepEqual(actual, expected, `unexpected outcome of: ${sql}`);
        return true;
      },
      `expected to be refused: ${sql}`,
    );
  } finally {
    await client.query('rollback');
  }
}

export function denied(message: string, detail: string): Expected {
  return { code: '42501', message, detail };
}

export async function isMember(client: pg.Client, role: string, of: string): Promise<boolean> {
  const { rows } = await client.query<{ m: boolean }>(
    `select exists (select 1 from pg_auth_members m join pg_roles r on r.oid = m.roleid
       join pg_roles u on u.oid = m.member where r.rolname = $2 and u.rolname = $1) as m`,
    [role, of],
  );
  return rows[0]!.m;
}
