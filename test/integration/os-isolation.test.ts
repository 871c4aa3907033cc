// One OS user per managed server and another for the catalog. A process running as a server's
// uid (what code execution inside its postmaster amounts to: an extension bug, a future
// escalation) cannot read another server's or the catalog's files, edit the catalog's
// pg_hba.conf, signal their postmasters, connect to their sockets or archive agents, or read the
// platform's secrets. Real OS users, real processes spawned with that uid, real psql.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Platform } from '../../src/app/platform.js';
import { PlatformAccounts, sweepOrphanAccounts } from '../../src/host/os-accounts.js';
import { allowLoopback, startTestPlatform, tempDir, type TestPlatform } from '../helpers/platform.js';
import { psql } from '../helpers/clients.js';

const PASSWORD = 'Isolat3d-Passw0rd!';
const root = process.getuid?.() === 0;

interface Attempt {
  readonly what: string;
  readonly op: 'read' | 'readdir' | 'append' | 'signal' | 'connect';
  readonly path?: string;
  readonly pid?: number;
  readonly signal?: string | number;
}

// Runs inside a process with the server's uid: each attempt's outcome ('ok' or the error code).
const PROBE = `
const fs = require('node:fs');
const net = require('node:net');
(async () => {
  const out = {};
  for (const a of JSON.parse(process.env.ATTEMPTS)) {
    try {
      if (a.op === 'read') fs.readFileSync(a.path);
      else if (a.op === 'readdir') fs.readdirSync(a.path);
      else if (a.op === 'append') fs.closeSync(fs.openSync(a.path, 'a'));
      else if (a.op === 'signal') process.kill(a.pid, a.signal);
      else await new Promise((res, rej) => { const s = net.connect(a.path, () => { s.destroy(); res(); }); s.on('error', rej); });
      out[a.what] = 'ok';
    } catch (e) {
      out[a.what] = e.code || String(e);
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

interface Ids {
  readonly uid: number;
  readonly gid: number;
}

function run(file: string, args: readonly string[], ids: Ids, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { uid: ids.uid, gid: ids.gid, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function attempt(ids: Ids, attempts: readonly Attempt[]): Promise<Record<string, string>> {
  const r = await run(process.execPath, ['-e', PROBE], ids, { ATTEMPTS: JSON.stringify(attempts) });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, string>;
}

/** psql as `ids` straight to a cluster's Unix socket (not through the gateway). */
function psqlAs(ids: Ids, socketDir: string, user: string) {
  return run('psql', ['-X', '-At', '-h', socketDir, '-U', user, '-d', 'postgres', '-c', 'select 1'], ids, {
    PGPASSWORD: 'not-the-password',
    PGCONNECT_TIMEOUT: '10',
  });
}

function owner(dir: string): Ids {
  const st = statSync(dir);
  return { uid: st.uid, gid: st.gid };
}

function userName(uid: number): string {
  return execFileSync('getent', ['passwd', String(uid)], { encoding: 'utf8' }).split(':')[0]!;
}

function userExists(name: string): boolean {
  try {
    execFileSync('getent', ['passwd', name], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function sql(port: number, server: string, q: string) {
  const conn = `hostaddr=127.0.0.1 port=${port} dbname=postgres user=owner@${server} sslmode=require connect_timeout=10`;
  return psql(conn, PASSWORD, ['-q', '-c', q]);
}

async function create(t: TestPlatform, name: string): Promise<number> {
  const r = await t.cli(['server', 'create', name, '--admin-user', 'owner', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, name);
  return t.platform.snapshots.snapshot.servers.get(name)!.id;
}

test("a process with one server's uid cannot reach another server, the catalog or the secrets; every server still works", {
  skip: root ? false : 'needs root (real OS users)',
}, async () => {
  const t = await startTestPlatform();
  let restarted: Platform | null = null;
  try {
    const p = t.platform.paths;
    const one = await create(t, 'tenant-one');
    const two = await create(t, 'tenant-two');
    const s1 = owner(p.serverData(one));
    const s2 = owner(p.serverData(two));
    const cat = owner(p.catalogData);
    const catalogPid = postmasterPid(p.catalogData);
    const twoPid = postmasterPid(p.serverData(two));

    // The attack, as server 1's uid.
    const got = await attempt(s1, [
      { what: 'own PG_VERSION', op: 'read', path: path.join(p.serverData(one), 'PG_VERSION') },
      { what: 'server 2 PG_VERSION', op: 'read', path: path.join(p.serverData(two), 'PG_VERSION') },
      { what: 'server 2 data dir', op: 'readdir', path: p.serverData(two) },
      { what: 'server 2 volume', op: 'readdir', path: path.dirname(p.serverData(two)) },
      { what: 'server 2 log dir', op: 'readdir', path: path.join(p.serverData(two), 'log') },
      { what: 'catalog data dir', op: 'readdir', path: p.catalogData },
      { what: 'catalog PG_VERSION', op: 'read', path: path.join(p.catalogData, 'PG_VERSION') },
      { what: 'catalog pg_hba.conf (append)', op: 'append', path: path.join(p.catalogData, 'pg_hba.conf') },
      { what: 'catalog pg_hba.conf (read)', op: 'read', path: path.join(p.catalogData, 'pg_hba.conf') },
      { what: 'kill -0 catalog', op: 'signal', pid: catalogPid, signal: 0 },
      { what: 'SIGHUP catalog', op: 'signal', pid: catalogPid, signal: 'SIGHUP' },
      { what: 'kill -0 server 2', op: 'signal', pid: twoPid, signal: 0 },
      { what: 'SIGHUP server 2', op: 'signal', pid: twoPid, signal: 'SIGHUP' },
      { what: 'server 2 socket', op: 'connect', path: path.join(p.serverSocketDir(two), '.s.PGSQL.5432') },
      { what: 'catalog socket', op: 'connect', path: path.join(p.catalogSocketDir(), '.s.PGSQL.5432') },
      { what: 'server 2 archive agent', op: 'connect', path: path.join(p.runDir, `a${two}`, 's.sock') },
      { what: 'secrets dir', op: 'readdir', path: p.secretsDir },
      { what: 'catalog password', op: 'read', path: path.join(p.secretsDir, 'catalog.password') },
      { what: 'server 2 maintenance secret', op: 'read', path: p.maintenanceSecret(two) },
      { what: 'owner token (client.json)', op: 'read', path: p.clientConfig },
      { what: 'backup repository', op: 'readdir', path: path.join(p.root, 'backups') },
      { what: 'volume images and keys', op: 'readdir', path: p.volumesDir },
    ]);
    assert.deepEqual(got, {
      'own PG_VERSION': 'ok', // the control: the probe really runs as a user that reaches its own server
      'server 2 PG_VERSION': 'EACCES',
      'server 2 data dir': 'EACCES',
      'server 2 volume': 'EACCES',
      'server 2 log dir': 'EACCES',
      'catalog data dir': 'EACCES',
      'catalog PG_VERSION': 'EACCES',
      'catalog pg_hba.conf (append)': 'EACCES',
      'catalog pg_hba.conf (read)': 'EACCES',
      'kill -0 catalog': 'EPERM',
      'SIGHUP catalog': 'EPERM',
      'kill -0 server 2': 'EPERM',
      'SIGHUP server 2': 'EPERM',
      'server 2 socket': 'EACCES',
      'catalog socket': 'EACCES',
      'server 2 archive agent': 'EACCES',
      'secrets dir': 'EACCES',
      'catalog password': 'EACCES',
      'server 2 maintenance secret': 'EACCES',
      'owner token (client.json)': 'EACCES',
      'backup repository': 'EACCES',
      'volume images and keys': 'EACCES',
    });
    // psql as server 1's uid: its own socket answers (and asks for the password); the others refuse.
    assert.match((await psqlAs(s1, p.serverSocketDir(one), 'owner')).stderr, /password authentication failed for user "owner"/);
    for (const dir of [p.serverSocketDir(two), p.catalogSocketDir()]) {
      const r = await psqlAs(s1, dir, 'pgwarden_catalog');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`connection to server on socket "${dir}/.s.PGSQL.5432" failed: Permission denied`));
    }

    // Three distinct unprivileged users, named per platform installation, files of their own only.
    const names = [userName(s1.uid), userName(s2.uid), userName(cat.uid)];
    const tag = /^pgw_([0-9a-f]{8})_c$/.exec(names[2]!)?.[1];
    assert.ok(tag, `catalog user ${names[2]}`);
    assert.deepEqual(names, [`pgw_${tag}_s${one}`, `pgw_${tag}_s${two}`, `pgw_${tag}_c`]);
    assert.equal(new Set([s1.uid, s2.uid, cat.uid, 0]).size, 4);
    assert.equal(new Set([s1.gid, s2.gid, cat.gid, 0]).size, 4);
    for (const [dir, ids] of [
      [p.serverData(one), s1],
      [path.dirname(p.serverData(one)), s1],
      [p.serverSocketDir(one), s1],
      [p.serverData(two), s2],
      [path.dirname(p.serverData(two)), s2],
      [p.serverSocketDir(two), s2],
      [p.catalogData, cat],
      [path.dirname(p.catalogData), cat],
      [p.catalogSocketDir(), cat],
    ] as const) {
      const st = statSync(dir);
      assert.deepEqual({ dir, uid: st.uid, mode: st.mode & 0o777 }, { dir, uid: ids.uid, mode: 0o700 });
    }
    // The postmasters run as their own users.
    const procUid = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    assert.equal(procUid(catalogPid), cat.uid);
    assert.equal(procUid(twoPid), s2.uid);
    assert.equal(procUid(postmasterPid(p.serverData(one))), s1.uid);

    // Every server still works end to end through the gateway.
    let port = t.platform.gateway.port;
    for (const name of ['tenant-one', 'tenant-two']) {
      const r = await sql(port, name, `create table t (v text); insert into t values ('${name}'); select v from t`);
      assert.equal(r.stdout, name, r.stderr);
    }
    // WAL archiving (the archiver, as the server's user, hands each segment to its own agent socket).
    await t.platform.servers.archiveCurrentWal(one);
    assert.equal((await t.cli(['server', 'stop', 'tenant-one'])).code, 0);
    // A data dir made for another OS user (as every server's was when they shared one account):
    // the next start gives it back to the server's own user.
    await t.platform.servers.openVolume(one);
    execFileSync('chown', ['-R', `${cat.uid}:${cat.gid}`, path.dirname(p.serverData(one))]);
    assert.equal(statSync(path.join(p.serverData(one), 'PG_VERSION')).uid, cat.uid);
    assert.equal((await t.cli(['server', 'start', 'tenant-one'])).code, 0);
    assert.equal((await sql(port, 'tenant-one', 'select v from t')).stdout, 'tenant-one');
    for (const f of [
      path.dirname(p.serverData(one)),
      p.serverData(one),
      path.join(p.serverData(one), 'PG_VERSION'),
      path.join(p.serverData(one), 'global', 'pg_control'),
    ]) {
      assert.equal(statSync(f).uid, s1.uid, f);
    }

    // A backup and a restore: the copy is a new server with a user of its own.
    const b = await t.cli(['backup', 'create', '--server', 'tenant-one']);
    assert.equal(b.code, 0, b.stderr);
    const r = await t.cli(['server', 'restore', 'tenant-copy', '--source', 'tenant-one']);
    assert.equal(r.code, 0, r.stderr);
    await allowLoopback(t, 'tenant-copy');
    const copy = t.platform.snapshots.snapshot.servers.get('tenant-copy')!.id;
    const s3 = owner(p.serverData(copy));
    assert.equal(userName(s3.uid), `pgw_${tag}_s${copy}`);
    assert.equal(new Set([s1.uid, s2.uid, s3.uid, cat.uid]).size, 4);
    assert.equal((await sql(port, 'tenant-copy', 'select v from t')).stdout, 'tenant-one');
    assert.deepEqual(await attempt(s3, [{ what: 'server 1 data dir', op: 'readdir', path: p.serverData(one) }]), { 'server 1 data dir': 'EACCES' });

    // A restarted platform keeps the same users.
    const options = t.platform.options;
    await t.platform.stop();
    restarted = new Platform(options);
    await restarted.start();
    port = restarted.gateway.port;
    for (const [dir, ids] of [
      [p.serverData(one), s1],
      [p.serverData(two), s2],
      [p.catalogData, cat],
    ] as const) {
      assert.equal(statSync(dir).uid, ids.uid);
      assert.equal(procUid(postmasterPid(dir)), ids.uid);
    }
    assert.equal((await sql(port, 'tenant-two', 'select v from t')).stdout, 'tenant-two');

    // Deleting a server removes its user, and only its user.
    assert.equal((await t.cli(['server', 'delete', 'tenant-two', '--yes'])).code, 0);
    assert.equal(userExists(`pgw_${tag}_s${two}`), false);
    assert.equal(userExists(`pgw_${tag}_s${one}`), true);
    assert.equal(userExists(`pgw_${tag}_c`), true);
    assert.equal((await sql(port, 'tenant-one', 'select v from t')).stdout, 'tenant-one');

    await restarted.stop();
    restarted = null;
    await t.stop();
    // Removing the test platform removes every user it made.
    for (const name of [`pgw_${tag}_s${one}`, `pgw_${tag}_s${copy}`, `pgw_${tag}_c`]) assert.equal(userExists(name), false, name);
  } finally {
    if (restarted) await restarted.stop();
    await t.stop().catch(() => undefined);
  }
});

test("gocryptfs volumes: each server's mount is its own user's too", { skip: root ? false : 'needs root (real OS users)' }, async () => {
  const t = await startTestPlatform({ volumeBackend: 'gocryptfs' });
  try {
    const p = t.platform.paths;
    const one = await create(t, 'fuse-one');
    const two = await create(t, 'fuse-two');
    assert.equal((await t.api<{ volume: { backend: string } }>('GET', '/servers/fuse-two/keys')).volume.backend, 'gocryptfs');
    const s1 = owner(p.serverData(one));
    assert.notEqual(s1.uid, owner(p.serverData(two)).uid);
    assert.deepEqual(
      await attempt(s1, [
        { what: 'own data dir', op: 'readdir', path: p.serverData(one) },
        { what: 'server 2 volume', op: 'readdir', path: path.dirname(p.serverData(two)) },
        { what: 'server 2 PG_VERSION', op: 'read', path: path.join(p.serverData(two), 'PG_VERSION') },
        { what: 'catalog volume', op: 'readdir', path: path.dirname(p.catalogData) },
      ]),
      { 'own data dir': 'ok', 'server 2 volume': 'EACCES', 'server 2 PG_VERSION': 'EACCES', 'catalog volume': 'EACCES' },
    );
    for (const name of ['fuse-one', 'fuse-two']) {
      const r = await sql(t.platform.gateway.port, name, `create table t (v text); insert into t values ('${name}'); select v from t`);
      assert.equal(r.stdout, name, r.stderr);
    }
  } finally {
    await t.stop();
  }
});

test('users are made per installation, a same-named stranger is refused, and those of a removed data dir are swept', {
  skip: root ? false : 'needs root (real OS users)',
}, async () => {
  const dir = tempDir('pgw-accounts-');
  const squatter = new PlatformAccounts({ root: dir, hostId: 'h0' });
  let squatterName: string | null = null;
  try {
    writeFileSync(path.join(dir, 'host-id'), 'h1\n');
    const accounts = PlatformAccounts.forDataDir(dir);
    const cat = await accounts.catalog();
    const s7 = await accounts.server(7);
    assert.equal(userName(cat.uid), accounts.catalogName());
    assert.equal(userName(s7.uid), accounts.serverName(7));
    assert.equal((await accounts.server(7)).uid, s7.uid, 'made once, then found');

    // A user with the name this platform wants, made by someone else: refused, and never removed.
    squatterName = accounts.serverName(8);
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', '--comment', 'not pgwarden', squatterName]);
    await assert.rejects(accounts.server(8), new RegExp(`The OS user ${squatterName} exists but was not made by this platform`));
    await accounts.removeServer(8);
    assert.equal(userExists(squatterName), true);

    // Another installation's users (the same data dir with another host id) are not this one's.
    assert.notEqual(squatter.catalogName(), accounts.catalogName());

    // The platform is alive: a sweep keeps its users. Its data dir removed: they go.
    await sweepOrphanAccounts();
    assert.equal(userExists(accounts.catalogName()), true);
    rmSync(dir, { recursive: true, force: true });
    // A platform starting in a test file running beside this one sweeps too, and may take them
    // first: what must hold is that they are gone.
    const swept = await sweepOrphanAccounts();
    assert.equal(userExists(accounts.catalogName()), false, `swept here: ${swept.join(',')}`);
    assert.equal(userExists(accounts.serverName(7)), false, `swept here: ${swept.join(',')}`);
    assert.equal(userExists(squatterName), true, "not pgwarden's: never swept");
  } finally {
    if (squatterName && userExists(squatterName)) execFileSync('userdel', [squatterName]);
    rmSync(dir, { recursive: true, force: true });
  }
});
