// A platform on a catalog cluster (--catalog-url with two hosts, target_session_attrs=read-write):
// a primary and a streaming standby (pg_basebackup -R) on loopback ports. The primary is stopped
// (immediate shutdown, by PID) and the standby promoted: the gateway serves on its snapshot
// meanwhile, then follows the new primary, re-reads everything (a change the feed never announced
// is applied) and applies changes made through the API again. Both moments are in the audit log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import pg from 'pg';
import { Cluster } from '../../src/engine/cluster.js';
import { serviceAccount, type OsAccount } from '../../src/host/os-user.js';
import { findPgBinaries } from '../../src/host/pg-binaries.js';
import { allowLoopback, auditEvents, startGatewayProcess, startTestPlatform, tempDir, until } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';

const execFileAsync = promisify(execFile);
const SUPERUSER = 'catowner';
const PASSWORD = 'Cat-Failover-Passw0rd';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function ownedDir(dir: string, account: OsAccount): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, account.uid, account.gid);
  return dir;
}

/** The cluster's configuration for TCP on loopback and replication (written by Cluster). */
function configure(dataDir: string, socketDir: string, account: OsAccount, port: number): Cluster {
  return new Cluster({
    dataDir,
    socketDir,
    account,
    settings: { listen_addresses: '127.0.0.1', port, wal_level: 'replica', max_wal_senders: 5, hot_standby: true },
    hbaLines: ['host all all 127.0.0.1/32 scram-sha-256', 'host replication all 127.0.0.1/32 scram-sha-256'],
  });
}

/** A postmaster this test runs itself (Cluster's supervisor would restart a primary we stop). */
function postmaster(dataDir: string, account: OsAccount): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn(findPgBinaries().bin('postgres'), ['-D', dataDir], {
    uid: account.uid,
    gid: account.gid,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, exited };
}

function client(port: number): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password: PASSWORD, database: 'postgres' });
  c.on('error', () => undefined);
  return c;
}

async function sql<T extends pg.QueryResultRow>(port: number, text: string, values: unknown[] = []): Promise<T[]> {
  const c = client(port);
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function answers(port: number): Promise<boolean> {
  try {
    await sql(port, 'select 1');
    return true;
  } catch {
    return false;
  }
}

test('catalog failover: fail-static during the outage, then the new primary is followed', async () => {
  const account = serviceAccount();
  const dir = tempDir('pgw-catfo-');
  const [p1, p2] = [await freePort(), await freePort()];
  const primaryDir = path.join(dir, 'primary');
  const standbyDir = path.join(dir, 'standby');
  const primary = configure(primaryDir, ownedDir(path.join(dir, 'sock1'), account), account, p1);
  await primary.init(SUPERUSER, PASSWORD);
  let first: ReturnType<typeof postmaster> | null = postmaster(primaryDir, account);
  let second: ReturnType<typeof postmaster> | null = null;
  let t: Awaited<ReturnType<typeof startTestPlatform>> | null = null;
  let gateway: ChildProcess | null = null;
  try {
    await until('the primary', () => answers(p1), 30_000, 100);
    // The standby: a base backup of the primary that streams from it, on its own port.
    ownedDir(standbyDir, account);
    await execFileAsync(findPgBinaries().bin('pg_basebackup'), ['-D', standbyDir, '-R', '-X', 'stream', '-h', '127.0.0.1', '-p', String(p1), '-U', SUPERUSER], {
      uid: account.uid,
      gid: account.gid,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: PASSWORD },
    });
    configure(standbyDir, ownedDir(path.join(dir, 'sock2'), account), account, p2).writeConfig();
    second = postmaster(standbyDir, account);
    await until('the standby', () => answers(p2), 30_000, 100);
    assert.deepEqual(await sql(p2, 'select pg_is_in_recovery() r'), [{ r: true }]);

    // The standby is named first: read-write must pass it over for the primary.
    const url = `postgresql://${SUPERUSER}:${PASSWORD}@127.0.0.1:${p2},127.0.0.1:${p1}/postgres?target_session_attrs=read-write`;
    t = await startTestPlatform({ catalogUrl: url });
    const platform = t;
    assert.deepEqual((await t.platform.db.query('select inet_server_port() p')).rows, [{ p: p1 }]);
    assert.equal((await t.cli(['server', 'create', 'fo1', '--admin-user', 'alice', '--admin-password', 'Fail0ver-pw'])).code, 0);
    await allowLoopback(t, 'fo1');
    // A gateway-only process (`pgwarden gateway --catalog-url`) on the same two hosts.
    const gw = startGatewayProcess(t.dataDir, ['--catalog-url', url]);
    gateway = gw.child;
    let gatewayLog = '';
    gw.child.stderr!.on('data', (d: Buffer) => (gatewayLog += d.toString()));
    const port2 = await gw.port;
    const loginAt = (port?: number) =>
      psql(conninfo(platform, { user: 'alice@fo1', sslmode: 'require', ...(port ? { port } : {}) }), 'Fail0ver-pw', ['-c', 'select 1']);
    const login = () => loginAt();
    assert.equal((await login()).stdout, '1');
    assert.equal((await loginAt(port2)).stdout, '1');
    const allowsV4 = () => platform.platform.snapshots.snapshot.network.servers.get('fo1')?.firewall.match('127.0.0.1') ?? null;

    // A change the change feed never announces (triggers off): only a full re-read sees it.
    const c = client(p1);
    await c.connect();
    try {
      await c.query('begin');
      await c.query('set local session_replication_role = replica');
      assert.equal((await c.query("delete from firewall_rules where name = 'loopback-v4'")).rowCount, 1);
      await c.query('commit');
    } finally {
      await c.end();
    }
    const [{ lsn }] = await sql<{ lsn: string }>(p1, 'select pg_current_wal_lsn()::text lsn');
    await until(
      'the standby to replay the change',
      async () => (await sql<{ ok: boolean }>(p2, 'select pg_last_wal_replay_lsn() >= $1::pg_lsn ok', [lsn]))[0]!.ok,
      20_000,
      50,
    );
    assert.deepEqual(await sql(p2, "select name from firewall_rules where name like 'loopback%' order by name"), [{ name: 'loopback-v6' }]);
    assert.equal(allowsV4(), 'loopback-v4', 'the gateway must not have seen the silent change yet');

    // Idle pool connections to the primary, to be lost with it.
    const held = await Promise.all(Array.from({ length: 5 }, () => platform.platform.db.connect()));
    for (const h of held) h.release();
    // The primary dies (immediate shutdown, by PID).
    first.child.kill('SIGQUIT');
    await first.exited;
    first = null;
    await until('catalog.disconnected in the audit log', async () => auditEvents(platform).some((e) => e.type === 'catalog.disconnected'), 20_000, 100);
    // Fail-static: the last snapshot decides (the silently deleted rule still lets 127.0.0.1 in).
    const during = await login();
    assert.equal(during.stdout, '1', during.stderr);
    assert.equal(allowsV4(), 'loopback-v4');
    await until('the gateway process to notice', async () => gatewayLog.includes('catalog connection lost'), 20_000, 100);
    const during2 = await loginAt(port2);
    assert.equal(during2.stdout, '1', during2.stderr);

    // The standby becomes the primary.
    const promotedAt = Date.now();
    assert.deepEqual(await sql(p2, 'select pg_promote(true, 60) ok'), [{ ok: true }]);
    // Every connection the catalog pool hands out now is on the new primary, read-write.
    const onNew = await Promise.all(
      Array.from({ length: 10 }, async () => (await platform.platform.db.query('select pg_is_in_recovery() r, inet_server_port() p')).rows[0]),
    );
    assert.deepEqual(new Set(onNew.map((r) => JSON.stringify(r))), new Set([JSON.stringify({ r: false, p: p2 })]));
    // The re-read after reconnecting applies the change nobody announced: 127.0.0.1 is refused.
    const refused = await until(
      'the gateway to re-read the snapshot from the new primary',
      async () => {
        const r = await login();
        return r.code !== 0 ? r : null;
      },
      20_000,
      100,
    );
    const reread = Date.now() - promotedAt;
    assert.match(refused.stderr, /no pg_hba\.conf entry for host "127\.0\.0\.1"/);
    const refused2 = await until(
      'the gateway process to re-read the snapshot',
      async () => {
        const r = await loginAt(port2);
        return r.code !== 0 ? r : null;
      },
      20_000,
      100,
    );
    assert.match(refused2.stderr, /no pg_hba\.conf entry for host "127\.0\.0\.1"/);
    // The gateway process said both in its log (pino JSON lines on stderr).
    const logged = gatewayLog
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; host?: string });
    assert.ok(
      logged.some((l) => l.msg === 'catalog connection lost: serving on the last snapshot' && l.host === `127.0.0.1:${p1}`),
      gatewayLog,
    );
    assert.ok(
      logged.some((l) => l.msg === 'catalog connection back: re-reading the snapshot' && l.host === `127.0.0.1:${p2}`),
      gatewayLog,
    );
    // Batched durability: the log has the reconnection shortly, not necessarily by now.
    const events = await until(
      'catalog.reconnected in the audit log',
      async () => {
        const all = auditEvents(platform);
        return all.some((e) => e.type === 'catalog.reconnected') && all;
      },
      20_000,
      100,
    );
    const down = events.find((e) => e.type === 'catalog.disconnected');
    const back = events.find((e) => e.type === 'catalog.reconnected');
    assert.equal(down?.host, `127.0.0.1:${p1}`);
    assert.equal(back?.host, `127.0.0.1:${p2}`);
    assert.equal(typeof back?.downSeconds, 'number');

    // The feed is live again on the new primary: a rule added through the API lets 127.0.0.1 in.
    const changedAt = Date.now();
    await t.api('PUT', '/servers/fo1/firewallRules/loopback-v4', { startIpAddress: '127.0.0.1', endIpAddress: '127.0.0.1' });
    const admitted = await until(
      'the gateway to apply the new rule',
      async () => {
        const r = await login();
        return r.code === 0 ? r : null;
      },
      10_000,
      50,
    );
    assert.equal(admitted.stdout, '1');
    await until('the gateway process to apply the new rule', async () => (await loginAt(port2)).code === 0, 10_000, 50);
    const applied = Date.now() - changedAt;
    // The pool and the feed are on the new primary, which answers read-write.
    assert.deepEqual((await t.platform.db.query('select pg_is_in_recovery() r, inet_server_port() p')).rows, [{ r: false, p: p2 }]);
    console.log(`catalog failover: re-read ${reread} ms after the promotion; an API change applied in ${applied} ms`);
  } finally {
    if (gateway && gateway.exitCode === null) {
      const gone = new Promise((r) => gateway!.once('exit', r));
      gateway.kill('SIGTERM');
      await gone;
    }
    await t?.stop();
    for (const pm of [first, second]) {
      if (!pm) continue;
      pm.child.kill('SIGINT');
      await pm.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
