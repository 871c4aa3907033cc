// `up --gateway-workers 2`: the platform process and one more gateway process accept on the same
// listening sockets. Each test picks which process gets a connection (it connects, asks `ss`
// which process holds the accepted socket, and tries again until it is the one wanted), so the
// paths across processes are exercised every time: a session on the other process is in the
// platform's one audit log, a CancelRequest reaching one process cancels a query on the other,
// failed logins on one block the address on both, a pool's size holds across both, and a process
// killed is recorded and started again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { allowLoopback, auditEvents, setAuditClasses, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { gatewayPort } from '../helpers/clients.js';
import { nestedInsertLine, pgwardenAuditInstalled } from '../helpers/pgaudit.js';
import type { PoolStats } from '../../src/gateway/pool/types.js';

let t: TestPlatform;
const SERVER = 'wk1';
const ADMIN = 'owner';
const PASSWORD = 'W0rkers-Admin-Passw0rd!';
const THROTTLED = 'Too many failed login attempts from this address. Try again later.';

before(
  async () => {
    t = await startTestPlatform({ gatewayWorkers: 2 });
    const r = await t.cli(['server', 'create', SERVER, '--admin-user', ADMIN, '--admin-password', PASSWORD]);
    assert.equal(r.code, 0, r.stderr);
    await allowLoopback(t, SERVER);
    await setAuditClasses(t, SERVER, ['READ', 'WRITE', 'DDL', 'ROLE', 'MISC']);
    // The other process follows the catalog on its own: wait until it serves the server too.
    await until('the other process serves the server', async () => {
      const c = await clientOn(worker(), ADMIN, PASSWORD).catch(() => null);
      await c?.end();
      return c !== null;
    });
    const admin = await clientOn(process.pid, ADMIN, PASSWORD);
    for (const role of ['wanda', 'victor', 'tess']) await admin.query(`create role ${role} login password '${role}-Passw0rd!'`);
    await admin.end();
  },
  { timeout: 180_000 },
);
after(async () => {
  await t?.stop();
});

function worker(): number {
  const pids = t.platform.gatewayWorkerPids;
  assert.equal(pids.length, 1);
  return pids[0]!;
}

/** The process holding the gateway's side of a loopback connection from `clientPort`. */
function ownerOf(clientPort: number): number | null {
  const port = gatewayPort(t);
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', `( sport = :${port} and dport = :${clientPort} )`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  return m ? Number(m[1]) : null;
}

/** A TCP connection to the gateway that process `pid` accepted (others are closed unused). */
async function socketOn(pid: number, from = '127.0.0.1'): Promise<net.Socket> {
  for (let i = 0; i < 400; i++) {
    const s = net.connect({ port: gatewayPort(t), host: '127.0.0.1', localAddress: from });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    // The accepting process may not have taken it off the queue yet.
    let owner: number | null = null;
    for (let k = 0; k < 50 && owner === null; k++) {
      owner = ownerOf(s.localPort!);
      if (owner === null) await new Promise((r) => setTimeout(r, 5));
    }
    if (owner === pid) return s;
    s.destroy();
  }
  throw new Error(`no connection was accepted by process ${pid} in 400 tries`);
}

/** node-postgres over a connection process `pid` accepted, as `user@SERVER`. */
async function clientOn(pid: number, user: string, password: string, from?: string): Promise<pg.Client> {
  const socket = await socketOn(pid, from);
  // node-postgres connects the stream it is given: this one is connected already.
  (socket as unknown as { connect: () => net.Socket }).connect = () => {
    setImmediate(() => socket.emit('connect'));
    return socket;
  };
  const c = new pg.Client({ stream: () => socket, user: `${user}@${SERVER}`, password, database: 'postgres', ssl: { rejectUnauthorized: false } });
  await c.connect();
  return c;
}

async function loginError(pid: number, user: string, password: string, from: string): Promise<{ code?: string; message: string } | true> {
  try {
    const c = await clientOn(pid, user, password, from);
    await c.end();
    return true;
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { code: e.code, message: e.message };
  }
}

test('both processes serve sessions, and the other process sessions are in the platform audit log', { timeout: 120_000 }, async () => {
  for (const pid of [process.pid, worker()]) {
    const c = await clientOn(pid, 'wanda', 'wanda-Passw0rd!');
    const clientPort = (c as unknown as { connection: { stream: net.Socket } }).connection.stream.localPort;
    const marker = `marker_${pid}`;
    assert.equal((await c.query(`select '${marker}' as m`)).rows[0].m, marker);
    // Statements of one shape: the first inspected, the next summarized by the relay (recorded by
    // it on the platform's process, from its summary on the other).
    for (const n of [101, 202, 303]) assert.equal((await c.query(`select ${n} as n_${pid}`)).rows[0][`n_${pid}`], n);
    await c.end();
    const found = await until(`the statement of the session on process ${pid}`, async () =>
      auditEvents<{ type: string; text?: string; connection?: { clientPort?: number } }>(t).find((e) => e.type === 'statement' && e.text?.includes(marker)),
    );
    assert.equal(found.connection?.clientPort, clientPort);
    const shaped = await until(`the statements of one shape on process ${pid}`, async () => {
      const s = auditEvents<{ type: string; text?: string; rows?: number; connection?: { clientPort?: number } }>(t).filter(
        (e) => e.type === 'statement' && e.text?.endsWith(` as n_${pid}`),
      );
      return s.length >= 3 && s;
    });
    assert.deepEqual(
      shaped.map((e) => [e.text, e.rows, e.connection?.clientPort]),
      [101, 202, 303].map((n) => [`select ${n} as n_${pid}`, 1, clientPort]),
    );
    await until(`the session end on process ${pid}`, async () =>
      auditEvents<{ type: string; connection?: { clientPort?: number } }>(t).some((e) => e.type === 'session.ended' && e.connection?.clientPort === clientPort),
    );
  }
});

for (const [sessionOn, cancelOn] of [
  ['worker', 'platform'],
  ['platform', 'worker'],
] as const) {
  test(`cancel: a CancelRequest accepted by the ${cancelOn} process cancels a query on the ${sessionOn} process (57014)`, { timeout: 60_000 }, async () => {
    const pidOf = (which: 'worker' | 'platform') => (which === 'worker' ? worker() : process.pid);
    const c = await clientOn(pidOf(sessionOn), 'victor', 'victor-Passw0rd!');
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      const running = c.query('select pg_sleep(30)').then(
        () => null,
        (err: { code?: string; message: string }) => err,
      );
      await new Promise((r) => setTimeout(r, 300));
      const s = await socketOn(pidOf(cancelOn));
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      cancel.writeInt32BE(key.processID, 8);
      cancel.writeInt32BE(key.secretKey, 12);
      s.end(cancel);
      await new Promise((r) => s.once('close', r));
      const err = await running;
      assert.equal(err?.code, '57014');
      assert.equal(err?.message, 'canceling statement due to user request');
    } finally {
      await c.end();
    }
  });
}

test('throttle: failures on one process block the address on both, with the SPEC error', { timeout: 120_000 }, async () => {
  const p = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--state', 'Enabled']);
  assert.equal(p.code, 0, p.stderr);
  await until('the policy in the snapshot', async () => t.platform.snapshots.snapshot.threat.get(SERVER)?.autoProtection.state === 'Enabled');
  const attacker = '127.0.0.77';
  await t.api('PUT', `/servers/${SERVER}/firewallRules/attacker`, { startIpAddress: attacker, endIpAddress: attacker });
  await until('the rule in the snapshot', async () => t.platform.snapshots.snapshot.network.servers.get(SERVER)?.firewall.match(attacker));
  // Failures alternate between the processes: the platform process counts them all.
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await loginError(i % 2 ? process.pid : worker(), 'tess', `wrong-${i}`, attacker));
  for (const r of results) assert.equal(typeof r === 'object' && r.code, '28P01');
  for (const pid of [worker(), process.pid]) {
    const r = await until(`the block on process ${pid}`, async () => {
      const got = await loginError(pid, 'tess', 'tess-Passw0rd!', attacker);
      return typeof got === 'object' && got.code === '53300' ? got : null;
    });
    assert.equal(r.message, THROTTLED);
  }
  // Elsewhere the user still logs in, on either process.
  assert.equal(await loginError(worker(), 'tess', 'tess-Passw0rd!', '127.0.0.1'), true);
});

test('transaction pooling across both processes: backends stay within the pool size, pool show sums both', { timeout: 120_000 }, async () => {
  const SIZE = 4;
  const r = await t.cli(['server', 'update', SERVER, '--pool-mode', 'transaction', '--pool-size', String(SIZE)]);
  assert.equal(r.code, 0, r.stderr);
  await until('transaction pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(SERVER)?.poolMode === 'transaction');
  const clients: pg.Client[] = [];
  try {
    for (let i = 0; i < 12; i++) clients.push(await clientOn(i % 2 ? process.pid : worker(), 'wanda', 'wanda-Passw0rd!'));
    const rounds = clients.map((c) => c.query('select pg_sleep(0.3), pg_backend_pid() as pid'));
    const watcher = await clientOn(process.pid, 'victor', 'victor-Passw0rd!');
    let most = 0;
    for (let i = 0; i < 5; i++) {
      const n = (await watcher.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where usename = 'wanda'`)).rows[0]!.n;
      most = Math.max(most, n);
      await new Promise((r) => setTimeout(r, 100));
    }
    await watcher.end();
    await Promise.all(rounds);
    assert.ok(most <= SIZE, `${most} backends of wanda, pool size ${SIZE}`);
    const rows = await until('both processes in the pool report', async () => {
      const got = await t.api<{ pools: PoolStats[] }>('GET', `/servers/${SERVER}/pool`);
      const row = got.pools.find((x) => x.user === 'wanda');
      return row && row.clients === 12 ? got.pools : null;
    });
    const wanda = rows.filter((x) => x.user === 'wanda');
    assert.equal(wanda.length, 1, 'one row per (role, database), summed over the processes');
    assert.equal(wanda[0]!.poolSize, SIZE);
    assert.ok(wanda[0]!.opened <= SIZE);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await t.cli(['server', 'update', SERVER, '--pool-mode', 'none']);
  }
});

test('transaction pooling on the other process: pgAudit lines join the client session that held the backend', {
  timeout: 120_000,
  skip: pgwardenAuditInstalled() ? false : 'pgAudit and pgwarden_audit are not installed',
}, async () => {
  const admin = await clientOn(process.pid, ADMIN, PASSWORD);
  await admin.query('create table wk_nested(x int)');
  await admin.query('grant insert on wk_nested to tess');
  await admin.end();
  const r = await t.cli(['server', 'update', SERVER, '--pool-mode', 'transaction', '--pool-size', '1']);
  assert.equal(r.code, 0, r.stderr);
  await until('transaction pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(SERVER)?.poolMode === 'transaction');
  try {
    // Two clients on the worker process take turns on the one backend, transaction by transaction:
    // only the index's lends and returns, sent over IPC, tell whose each nested insert was.
    const a = await clientOn(worker(), 'tess', 'tess-Passw0rd!');
    const b = await clientOn(worker(), 'tess', 'tess-Passw0rd!');
    const pids = new Set<number>();
    for (let i = 0; i < 3; i++) {
      for (const [c, v] of [
        [a, 1000 + i],
        [b, 2000 + i],
      ] as const) {
        pids.add((await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
        await c.query(`do $$ begin insert into wk_nested values (${v}); end $$`);
      }
    }
    assert.equal(pids.size, 1, 'one backend served both clients');
    const connIdOf = async (c: pg.Client) => {
      const port = (c as unknown as { connection: { stream: net.Socket } }).connection.stream.localPort;
      type Ev = { type: string; connection: { connId: string; clientPort: number } };
      const e = await until('the session', async () => auditEvents<Ev>(t).find((x) => x.type === 'auth.succeeded' && x.connection.clientPort === port));
      return e.connection.connId;
    };
    const [sa, sb] = [await connIdOf(a), await connIdOf(b)];
    await a.end();
    await b.end();
    type Line = { sessionId: string | null; statement: string };
    const line = (v: number) => nestedInsertLine<Line>(t, v);
    for (let i = 0; i < 3; i++) {
      assert.equal((await line(1000 + i)).sessionId, sa);
      assert.equal((await line(2000 + i)).sessionId, sb);
    }
  } finally {
    await t.cli(['server', 'update', SERVER, '--pool-mode', 'none']);
  }
});

test('/metrics sums the gateway metrics of both processes', { timeout: 60_000 }, async () => {
  const c = await clientOn(worker(), 'wanda', 'wanda-Passw0rd!');
  try {
    const value = (text: string, name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const own = await t.platform.metrics.getMetricsAsJSON();
    const ownAccepted = own.find((m) => m.name === 'pgwarden_gateway_connections_total')!.values.reduce((a, v) => a + v.value, 0);
    const ownSessions = own.find((m) => m.name === 'pgwarden_gateway_sessions')!.values.reduce((a, v) => a + v.value, 0);
    const scraped = await t.platform.metrics.metrics();
    assert.ok(value(scraped, 'pgwarden_gateway_connections_total') > ownAccepted, 'the other process accepted connections too');
    assert.equal(value(scraped, 'pgwarden_gateway_sessions'), ownSessions + 1, 'the session on the other process counts');
    assert.equal((scraped.match(/^# TYPE pgwarden_gateway_sessions /gm) ?? []).length, 1, 'one metric, not one per process');
  } finally {
    await c.end();
  }
});

test('a gateway process killed is recorded in the audit log and started again', { timeout: 120_000 }, async () => {
  const before = worker();
  process.kill(before, 'SIGKILL');
  await until('gateway.worker_exited in the audit log', async () =>
    auditEvents<{ type: string; details?: { pid?: number } }>(t).some((e) => e.type === 'gateway.worker_exited' && e.details?.pid === before),
  );
  const after = await until('a new gateway process', async () => {
    const pids = t.platform.gatewayWorkerPids;
    return pids[0] && pids[0] !== before ? pids[0] : null;
  });
  const c = await until('a session on the new process', async () => clientOn(after, 'wanda', 'wanda-Passw0rd!').catch(() => null));
  assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
  await c.end();
});
