// An attached server: a real Patroni cluster (one etcd, two PostgreSQL nodes on loopback, TLS
// from a CA the test makes) fronted by the gateway. Clients log in through the gateway; the
// gateway reaches the primary over TLS verify-full with SCRAM passthrough; a killed leader
// moves new connections to the new primary and leaves `server.failover` in the audit log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { auditEvents, allowLoopback, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, gatewayPort, psql } from '../helpers/clients.js';
import { startPatroniCluster, type PatroniCluster, type PatroniNode } from '../helpers/patroni.js';
import { startOidcProvider, type OidcProviderHandle } from '../../support/oidc.js';
import { writeFileSync } from 'node:fs';

let t: TestPlatform;
let cluster: PatroniCluster;
let idp: OidcProviderHandle;
const AUD = 'api://pgwarden-attached';
const SERVER = 'ha1';
const PASSWORD = 'Attach3d-Passw0rd!';
const HOST = `${SERVER}.pgwarden.localhost`;

before(async () => {
  idp = await startOidcProvider({ clients: [{ clientId: 'app', oid: 'oid-app', groups: [] }] });
  cluster = await startPatroniCluster(2);
  // Two gateway processes: sessions land on either, and both reach the cluster through the relay.
  t = await startTestPlatform({ gatewayWorkers: 2 });
});
after(async () => {
  await t?.stop();
  await cluster?.stop();
  await idp?.close();
});

/** A node-postgres client through the gateway; an error on it after connecting (a server that
 * went away under load) is answered by the query it fails, not thrown at the test. */
const client = (app: string, password = PASSWORD, user = 'appadmin') => {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: `${user}@${SERVER}`,
    password,
    database: 'postgres',
    application_name: app,
    ssl: { rejectUnauthorized: false },
    connectionTimeoutMillis: 10_000,
  });
  c.on('error', () => undefined);
  return c;
};

test('attach: bad endpoints are 400 InvalidArgument; no maintenance password and no terminal is a clear error', async () => {
  const bad = await t.apiStatus('POST', '/servers', {
    mode: 'attached',
    name: 'ha-bad',
    administratorLogin: 'appadmin',
    endpoints: ['127.0.0.1'],
    tlsCa: cluster.caPem,
    maintenanceUser: 'postgres',
    maintenancePassword: 'x',
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.body, {
    error: { code: 'InvalidArgument', message: "Invalid endpoint '127.0.0.1': it must be HOST:PORT (an IPv6 address in brackets: [::1]:5432)." },
  });
  const noPassword = await t.cli(
    [
      'server',
      'attach',
      'ha-nopw',
      '--endpoints',
      cluster.nodes[0]!.endpoint,
      '--tls-ca',
      cluster.caFile,
      '--maintenance-user',
      'postgres',
      '--admin-user',
      'appadmin',
    ],
    { PGWARDEN_MAINTENANCE_PASSWORD: '' },
  );
  assert.notEqual(noPassword.code, 0);
  assert.match(noPassword.stderr, /A maintenance password is required: set PGWARDEN_MAINTENANCE_PASSWORD or run in a terminal to be prompted\./);
});

test('attach the cluster; server show says attached with its endpoints; the password is sealed in the catalog', async () => {
  const r = await t.cli(
    [
      'server',
      'attach',
      SERVER,
      '--endpoints',
      cluster.nodes.map((n) => n.endpoint).join(','),
      '--tls-ca',
      cluster.caFile,
      '--maintenance-user',
      cluster.superuser.user,
      '--admin-user',
      'appadmin',
      '--admin-password',
      PASSWORD,
    ],
    { PGWARDEN_MAINTENANCE_PASSWORD: cluster.superuser.password },
  );
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  const shown = await t.cli(['server', 'show', SERVER, '--output', 'json']);
  assert.equal(shown.code, 0, shown.stderr);
  const s = JSON.parse(shown.stdout) as { mode: string; endpoints: string[]; state: string };
  assert.equal(s.mode, 'attached');
  assert.deepEqual(
    s.endpoints,
    cluster.nodes.map((n) => n.endpoint),
  );
  assert.equal(s.state, 'Ready');
  const row = await t.platform.db.query<{ p: string }>('select maintenance_password p from servers where name = $1', [SERVER]);
  assert.match(row.rows[0]!.p, /^sealed:v1:/);
  assert.doesNotMatch(JSON.stringify(auditEvents(t)), new RegExp(cluster.superuser.password));
  // Not started, stopped or backed up by pgwarden.
  const stop = await t.apiStatus('POST', `/servers/${SERVER}/stop`);
  assert.equal(stop.status, 409);
  // Its parameters belong to the engine that runs it.
  const param = await t.apiStatus('PUT', `/servers/${SERVER}/configurations/work_mem`, { value: '8MB' });
  assert.equal(param.status, 409);
  assert.match(JSON.stringify(param.body), /is attached: its parameters and extensions are set in the engine that runs it/);
});

test('psql (verify-full) and node-postgres through the gateway reach the primary', async () => {
  const leader = (await cluster.leader())!;
  const r = await psql(
    conninfo(t, { host: HOST, hostaddr: '127.0.0.1', user: 'appadmin', sslmode: 'verify-full', sslrootcert: t.platform.paths.caCert }),
    PASSWORD,
    ['-c', 'select current_user, inet_server_port(), pg_is_in_recovery()'],
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `appadmin|${leader.pgPort}|f`);

  // The cluster's owner decides what the administrator may do (PostgreSQL 15: public is not writable).
  const su = await cluster.connect(leader);
  await su.query('grant all on schema public to appadmin');
  await su.end();
  const c = client('attached-node-pg');
  await c.connect();
  await c.query('create table if not exists ha_items (id serial primary key, v text)');
  const { rows } = await c.query<{ n: number }>("insert into ha_items (v) values ('one') returning id as n");
  assert.ok(rows[0]!.n >= 1);
  await c.end();
});

test('a firewall rule still decides', async () => {
  await t.api('DELETE', `/servers/${SERVER}/firewallRules/loopback-v4`);
  await until('the rule gone from the gateway', async () => !t.platform.snapshots.snapshot.network.servers.get(SERVER)?.firewall.match('127.0.0.1'), 5000, 20);
  const c = client('attached-fw');
  await assert.rejects(c.connect(), (e: Error & { code?: string }) => {
    assert.equal(e.code, '28000');
    assert.equal(e.message, 'no pg_hba.conf entry for host "127.0.0.1", user "appadmin", database "postgres", SSL on');
    return true;
  });
  await allowLoopback(t, SERVER);
});

test('a statement is in the audit log with the client address', async () => {
  const u = await t.cli(['server', 'audit', 'update', '--server', SERVER, '--classes', 'READ,WRITE,DDL']);
  assert.equal(u.code, 0, u.stderr);
  await until('audit settings in the snapshot', async () => t.platform.snapshots.snapshot.audit.get(SERVER)?.classes.includes('WRITE'), 5000, 20);
  const c = client('attached-audit');
  await c.connect();
  await c.query("insert into ha_items (v) values ('audited')");
  await c.end();
  type S = { type: string; applicationName?: string; commandTag?: string; server?: string; connection: { clientAddress: string } };
  const e = await until(
    'the statement in the audit log',
    async () => auditEvents<S>(t).find((x) => x.type === 'statement' && x.applicationName === 'attached-audit' && x.commandTag === 'INSERT'),
    10_000,
    100,
  );
  assert.equal(e.server, SERVER);
  assert.equal(e.connection.clientAddress, '127.0.0.1');
});

test('token login on the attached cluster: the principal roles are made on it through the maintenance login', async () => {
  const caFile = `${t.dataDir}/../attached-idp-ca.pem`;
  writeFileSync(caFile, idp.caPem);
  const set = await t.cli([
    'server',
    'identity-admin',
    'set',
    '--server',
    SERVER,
    '--issuer',
    idp.issuer,
    '--audience',
    AUD,
    '--login',
    'aad_admin',
    '--object-id',
    'oid-boss',
    '--type',
    'servicePrincipal',
    '--ca-file',
    caFile,
  ]);
  assert.equal(set.code, 0, set.stderr);
  const p = await t.cli(['server', 'identity-principal', 'create', '--server', SERVER, '--role', 'app_user', '--object-id', 'oid-app', '--type', 'user']);
  assert.equal(p.code, 0, p.stderr);
  await until('the principal in the gateway snapshot', async () => t.platform.snapshots.snapshot.identity.get(SERVER)?.principals.has('app_user'), 10_000, 50);
  const token = await idp.issueToken({ clientId: 'app', audience: AUD });
  const c = client('attached-token', token, 'app_user');
  await c.connect();
  try {
    const leader = (await cluster.leader())!;
    const { rows } = await c.query<{ u: string; port: number; r: boolean }>('select current_user as u, inet_server_port() as port, pg_is_in_recovery() as r');
    assert.deepEqual(rows[0], { u: 'app_user', port: leader.pgPort, r: false });
  } finally {
    await c.end();
  }
  // The role exists on the cluster itself (made through the maintenance login).
  const direct = await cluster.connect((await cluster.leader())!);
  try {
    assert.equal((await direct.query("select count(*)::int as n from pg_roles where rolname = 'app_user'")).rows[0].n, 1);
  } finally {
    await direct.end();
  }
});

test('session pooling on the attached cluster: a warm connection is reused after a reset', async () => {
  const r = await t.cli(['server', 'update', SERVER, '--pool-mode', 'session', '--pool-size', '2']);
  assert.equal(r.code, 0, r.stderr);
  await until('session pooling in the snapshot', async () => t.platform.snapshots.snapshot.servers.get(SERVER)?.poolMode === 'session', 10_000, 50);
  const pids: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      // Two gateway processes, a pool each (README): of three clients in a row, two land on one.
      const c = client('attached-pool');
      await c.connect();
      pids.push((await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
      await c.end();
      await until(
        'the connection idle in a pool',
        async () => {
          const rows = (await t.api<{ pools: { user: string; idle: number }[] }>('GET', `/servers/${SERVER}/pool`)).pools;
          return rows.some((x) => x.user === 'appadmin' && x.idle >= 1);
        },
        10_000,
        50,
      );
    }
    assert.ok(new Set(pids).size < pids.length, `backends ${pids.join(',')}: one was reused`);
    // The other process's rows come every second.
    await until(
      'a reuse in the pool statistics',
      async () => {
        const rows = (await t.api<{ pools: { user: string; reused: number }[] }>('GET', `/servers/${SERVER}/pool`)).pools;
        return rows.some((x) => x.user === 'appadmin' && x.reused >= 1);
      },
      10_000,
      100,
    );
  } finally {
    const off = await t.cli(['server', 'update', SERVER, '--pool-mode', 'none']);
    assert.equal(off.code, 0, off.stderr);
  }
});

test('the leader killed under load: new connections reach the new primary, server.failover is audited', async () => {
  try {
    await leaderKilled();
  } catch (err) {
    process.stdout.write(`# the cluster's logs:\n${cluster.logs().replace(/^/gm, '# ')}\n`);
    throw err;
  }
});

async function leaderKilled(): Promise<void> {
  const oldLeader = (await cluster.leader())!;
  const other = cluster.nodes.find((n) => n !== oldLeader)!;
  // A session held on the old primary.
  const held = client('attached-held');
  await held.connect();
  const heldError = new Promise<Error & { code?: string }>((resolve) => held.on('error', resolve));

  // A bounded load: 4 workers, each a new connection and one insert at a time.
  let stopLoad = false;
  let acknowledged = 0;
  const workers = [0, 1, 2, 3].map(async (w) => {
    while (!stopLoad) {
      const c = client(`attached-load-${w}`);
      try {
        await c.connect();
        await c.query("insert into ha_items (v) values ('load')");
        acknowledged++;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  });
  let killedAt = 0;
  let writableAt = 0;
  let okAt = 0;
  try {
    await until('load running', async () => acknowledged >= 8, 20_000, 50);

    const pid = cluster.postmasterPid(oldLeader);
    assert.ok(pid);
    killedAt = Date.now();
    process.kill(pid, 'SIGKILL');

    // When the other node accepts writes (asked directly), and when the gateway first gets a
    // writable session on it.
    const watchWritable = until(
      'the standby promoted',
      async () => {
        const c = await cluster.connect(other).catch(() => null);
        if (!c) return false;
        try {
          const { rows } = await c.query<{ r: boolean }>('select pg_is_in_recovery() r');
          if (rows[0]!.r === false) writableAt = Date.now();
          return rows[0]!.r === false;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      90_000,
      100,
    );
    const gatewayOk = until(
      'a new connection through the gateway on the new primary',
      async () => {
        const c = client('attached-probe');
        try {
          await c.connect();
          const { rows } = await c.query<{ port: number; r: boolean }>('select inet_server_port() port, pg_is_in_recovery() r');
          return rows[0]!.port === other.pgPort && rows[0]!.r === false ? Date.now() : false;
        } catch {
          return false;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      90_000,
      100,
    );
    okAt = (await Promise.all([watchWritable, gatewayOk]))[1];
    const afterLoad = acknowledged;
    await until('load continuing on the new primary', async () => acknowledged >= afterLoad + 8, 20_000, 50);
  } finally {
    stopLoad = true;
    await Promise.all(workers);
  }

  const recovery = okAt - writableAt;
  process.stdout.write(
    `# failover: kill -> new primary writable ${writableAt - killedAt} ms; writable -> gateway connection ${Math.max(0, recovery)} ms; kill -> gateway ${okAt - killedAt} ms\n`,
  );
  assert.ok(recovery <= 10_000, `new connections reached the new primary ${recovery} ms after it accepted writes`);

  const err = await heldError;
  process.stdout.write(`# failover: the session held on the old primary ended with ${err.code}: ${err.message}\n`);
  // The old primary's own FATAL (a postmaster that died) or the gateway's 08006.
  assert.ok(['08006', '57P01'].includes(err.code ?? ''), `held session ended with ${err.code}: ${err.message}`);

  // No statement acknowledged to a client is missing from the audit log.
  type S = { type: string; applicationName?: string; commandTag?: string; outcome?: string };
  const audited = await until(
    'every acknowledged insert audited',
    async () => {
      const n = auditEvents<S>(t).filter(
        (e) => e.type === 'statement' && e.applicationName?.startsWith('attached-load-') && e.commandTag === 'INSERT' && e.outcome === 'success',
      ).length;
      return n >= acknowledged ? n : false;
    },
    10_000,
    100,
  );
  process.stdout.write(`# failover: ${acknowledged} inserts acknowledged, ${audited} audited\n`);

  type F = { type: string; server?: string; details?: { from: string; to: string } };
  const f = await until(
    'server.failover in the audit log',
    async () => auditEvents<F>(t).find((e) => e.type === 'server.failover' && e.server === SERVER),
    10_000,
    100,
  );
  assert.deepEqual(f.details, { from: oldLeader.endpoint, to: other.endpoint });
  const ha = (n: PatroniNode) => n.endpoint;
  assert.equal((await t.api<{ primaryEndpoint: string }>('GET', `/servers/${SERVER}`)).primaryEndpoint, ha(other));
}
