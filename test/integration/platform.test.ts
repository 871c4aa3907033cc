// Platform core with real PostgreSQL servers, the real CLI and the REST API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import pg from 'pg';
import { auditEvents, until, startTestPlatform, type TestPlatform } from '../helpers/platform.js';

let t: TestPlatform;
const PASSWORD = 'Str0ng-Passw0rd!';

before(async () => {
  t = await startTestPlatform();
});
after(async () => {
  await t?.stop();
});

function socketDirOf(name: string): string {
  const s = t.platform.snapshots.snapshot.servers.get(name);
  assert.ok(s, `server ${name} in snapshot`);
  return t.platform.paths.serverSocketDir(s.id);
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

async function adminClient(name: string, user: string, password = PASSWORD): Promise<pg.Client> {
  await waitFor(() => t.platform.snapshots.snapshot.servers.has(name));
  const c = new pg.Client({ host: socketDirOf(name), user, password, database: 'postgres' });
  await c.connect();
  return c;
}

test('create, list, show, update, stop, start and delete through the CLI', async () => {
  const created = await t.cli(['server', 'create', 'lifecycle-1', '--admin-user', 'alice', '--admin-password', PASSWORD, '-o', 'json']);
  assert.equal(created.code, 0, created.stderr);
  const server = JSON.parse(created.stdout) as Record<string, string>;
  assert.equal(server.name, 'lifecycle-1');
  assert.equal(server.state, 'Ready');
  assert.equal(server.sslEnforcement, 'Enabled');
  assert.equal(server.minimalTlsVersion, 'TLS1_2');
  assert.equal(server.publicNetworkAccess, 'Enabled');
  assert.equal(server.administratorLogin, 'alice');
  assert.ok(!('administratorLoginPassword' in server));

  const list = await t.cli(['server', 'list']);
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^name\s+state/m);
  assert.match(list.stdout, /lifecycle-1\s+Ready\s+alice/);

  const shown = await t.cli(['server', 'show', 'lifecycle-1']);
  assert.match(shown.stdout, /fullyQualifiedDomainName\s+lifecycle-1\.pgwarden\.localhost/);

  // The administrator logs in to the real server with the password it was created with.
  const c = await adminClient('lifecycle-1', 'alice');
  const { rows } = await c.query<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; member: boolean }>(
    "select rolsuper, rolcreaterole, rolcreatedb, pg_has_role('alice', 'pgwarden_admin', 'member') as member from pg_roles where rolname = 'alice'",
  );
  assert.deepEqual(rows[0], { rolsuper: false, rolcreaterole: true, rolcreatedb: true, member: true });
  await c.query('create table t (id int)');
  await c.end();

  const upd = await t.cli(['server', 'update', 'lifecycle-1', '--ssl-enforcement', 'Disabled', '-o', 'json']);
  assert.equal(upd.code, 0, upd.stderr);
  assert.equal(JSON.parse(upd.stdout).minimalTlsVersion, 'TLSEnforcementDisabled');
  const bad = await t.cli(['server', 'update', 'lifecycle-1', '--minimal-tls-version', 'TLS1_3']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /minimalTlsVersion TLS1_3 cannot be set while sslEnforcement is Disabled/);
  const upd2 = await t.cli(['server', 'update', 'lifecycle-1', '--ssl-enforcement', 'Enabled', '--minimal-tls-version', 'TLS1_3', '-o', 'json']);
  assert.equal(JSON.parse(upd2.stdout).minimalTlsVersion, 'TLS1_3');

  // Password change reaches the server; the old password stops working.
  const pw = await t.cli(['server', 'update', 'lifecycle-1'], { PGWARDEN_ADMIN_PASSWORD: 'N3w-Passw0rd!' });
  assert.equal(pw.code, 0, pw.stderr);
  await assert.rejects(adminClient('lifecycle-1', 'alice'), (e: Error & { code?: string }) => e.code === '28P01');
  (await adminClient('lifecycle-1', 'alice', 'N3w-Passw0rd!')).end();

  const stopped = await t.cli(['server', 'stop', 'lifecycle-1', '-o', 'json']);
  assert.equal(JSON.parse(stopped.stdout).state, 'Stopped');
  await assert.rejects(adminClient('lifecycle-1', 'alice', 'N3w-Passw0rd!'));
  const started = await t.cli(['server', 'start', 'lifecycle-1', '-o', 'json']);
  assert.equal(JSON.parse(started.stdout).state, 'Ready');
  const again = await adminClient('lifecycle-1', 'alice', 'N3w-Passw0rd!');
  assert.equal((await again.query('select count(*)::int as n from t')).rows[0].n, 0);
  await again.end();

  const dataDir = t.platform.paths.serverData(t.platform.snapshots.snapshot.servers.get('lifecycle-1')!.id);
  const del = await t.cli(['server', 'delete', 'lifecycle-1']);
  assert.equal(del.code, 0, del.stderr);
  assert.throws(() => statSync(dataDir), /ENOENT/);
  const gone = await t.cli(['server', 'show', 'lifecycle-1']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /404 NotFound.*Server 'lifecycle-1' was not found/);
});

test('validation errors are clear and change nothing', async () => {
  const cases: [string[], RegExp][] = [
    [['bad-', '--admin-user', 'bob'], /Invalid server name 'bad-'/],
    [['ab', '--admin-user', 'bob'], /Invalid server name 'ab'/],
    [['Upper', '--admin-user', 'bob'], /Invalid server name 'Upper'/],
    [['a'.repeat(64), '--admin-user', 'bob'], /3 to 63 characters/],
    [['okname', '--admin-user', 'Admin'], /administratorLogin 'Admin' is a reserved name/],
    [['okname', '--admin-user', 'ROOT'], /administratorLogin 'ROOT' is a reserved name/],
    [['okname', '--admin-user', 'pg_x'], /names starting with pg_ are reserved/],
    [['okname', '--admin-user', 'PG_Monitor'], /names starting with pg_ are reserved/],
    [['okname', '--admin-user', 'pgwarden_maintenance'], /reserved by the platform/],
  ];
  for (const [args, re] of cases) {
    const r = await t.cli(['server', 'create', ...args, '--admin-password', PASSWORD]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re);
    assert.match(r.stderr, /400 InvalidArgument/);
  }
  for (const weak of ['short1A', 'alllowercase1', 'ALLUPPER!!!', '12345678!']) {
    const r = await t.cli(['server', 'create', 'okname', '--admin-user', 'bob', '--admin-password', weak]);
    assert.equal(r.code, 1, weak);
    assert.match(r.stderr, /administratorLoginPassword must/);
  }
  const hyphen = await t.apiStatus('POST', '/servers', { name: '-bad', administratorLogin: 'bob', administratorLoginPassword: PASSWORD });
  assert.equal(hyphen.status, 400);
  assert.match(JSON.stringify(hyphen.body), /Invalid server name '-bad'/);
  const bad = await t.apiStatus('POST', '/servers', {
    name: 'okname',
    administratorLogin: 'bob',
    administratorLoginPassword: PASSWORD,
    sslEnforcement: 'Maybe',
  });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /sslEnforcement/);
  const { value } = await t.api<{ value: unknown[] }>('GET', '/servers');
  assert.ok(!JSON.stringify(value).includes('okname'));

  assert.equal((await t.cli(['server', 'create', 'dup-1', '--admin-user', 'bob', '--admin-password', PASSWORD])).code, 0);
  const dup = await t.apiStatus('POST', '/servers', { name: 'dup-1', administratorLogin: 'carol', administratorLoginPassword: PASSWORD });
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.body, { error: { code: 'Conflict', message: "A server named 'dup-1' already exists." } });
  assert.equal((await t.cli(['server', 'delete', 'dup-1', '--yes'])).code, 0);
});

test('the administrator cannot become a superuser or reach the host', async () => {
  assert.equal((await t.cli(['server', 'create', 'escalate-1', '--admin-user', 'mallory', '--admin-password', PASSWORD])).code, 0);
  const c = await adminClient('escalate-1', 'mallory');
  const refused = async (sql: string, message: RegExp) => {
    await assert.rejects(c.query(sql), (e: Error & { code?: string }) => {
      assert.equal(e.code, '42501', `${sql}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  };
  await refused('alter role mallory superuser', /must be superuser/);
  await refused('create role evil superuser login', /must be superuser/);
  await refused("copy (select 1) to program 'id'", /must be superuser or have privileges of the pg_execute_server_program role/);
  await c.query('create table lines (line text)');
  await refused("copy lines from '/etc/passwd'", /must be superuser or have privileges of the pg_read_server_files role/);
  // PostgreSQL 15 lets a CREATEROLE role grant itself these; pgwarden_guard refuses it.
  await refused('grant pg_execute_server_program to mallory', /permission denied to grant role "pg_execute_server_program"/);
  await refused('create role sneaky login in role pg_read_server_files', /permission denied to grant role "pg_read_server_files"/);
  await refused('drop role pgwarden_admin', /permission denied to drop role "pgwarden_admin"/);
  await refused("alter system set work_mem = '1MB'", /permission denied to set parameter "work_mem"/);
  await refused("select pg_read_file('postgresql.conf')", /permission denied for function pg_read_file/);
  await refused("select pg_ls_dir('.')", /permission denied for function pg_ls_dir/);
  await refused("select lo_import('/etc/passwd')", /permission denied for function lo_import/);
  await refused("alter role pgwarden_maintenance password 'x'", /permission denied|must be superuser/);
  await c.end();
  assert.equal((await t.cli(['server', 'delete', 'escalate-1'])).code, 0);
});

test('no managed server and no catalog cluster listens on TCP', async () => {
  const created = await t.cli(['server', 'create', 'sockets-1', '--admin-user', 'dave', '--admin-password', PASSWORD]);
  assert.equal(created.code, 0, created.stderr);
  const pids = [t.platform.servers.postmasterPid(t.platform.snapshots.snapshot.servers.get('sockets-1')!.id)];
  const catalogPid = Number(readFileSync(`${t.platform.paths.catalogData}/postmaster.pid`, 'utf8').split('\n')[0]);
  pids.push(catalogPid);
  // Every socket inode any of these postmasters hold, compared with the kernel's TCP tables.
  const tcpInodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[9]) tcpInodes.add(cols[9]);
    }
  }
  for (const pid of pids) {
    assert.ok(pid, 'postmaster pid');
    const held = readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })
      .filter((l) => l.startsWith('socket:['))
      .map((l) => l.slice(8, -1));
    assert.ok(held.length > 0, 'holds its Unix socket');
    for (const inode of held) assert.ok(!tcpInodes.has(inode), `postmaster ${pid} holds TCP socket ${inode}`);
  }
  // The socket directory is the service account's alone.
  const st = statSync(socketDirOf('sockets-1'));
  assert.equal(st.mode & 0o777, 0o700);
  const hba = readFileSync(`${t.platform.paths.serverData(t.platform.snapshots.snapshot.servers.get('sockets-1')!.id)}/pg_hba.conf`, 'utf8');
  assert.doesNotMatch(hba, /trust/);
  assert.doesNotMatch(hba, /^host/m);
  assert.equal((await t.cli(['server', 'delete', 'sockets-1'])).code, 0);
});

test('a killed postmaster is restarted and the event recorded', async () => {
  assert.equal((await t.cli(['server', 'create', 'crash-1', '--admin-user', 'erin', '--admin-password', PASSWORD])).code, 0);
  const id = t.platform.snapshots.snapshot.servers.get('crash-1')!.id;
  const pid = t.platform.servers.postmasterPid(id)!;
  process.kill(pid, 'SIGKILL');
  const events = () => auditEvents<{ type: string; server?: string }>(t);
  await waitFor(() => events().some((e) => e.type === 'server.restarted' && e.server === 'crash-1'), 30_000);
  assert.notEqual(t.platform.servers.postmasterPid(id), pid);
  const c = await adminClient('crash-1', 'erin');
  assert.equal((await c.query('select 1 as one')).rows[0].one, 1);
  await c.end();
  assert.ok(events().some((e) => e.type === 'server.crashed' && e.server === 'crash-1'));
  assert.equal((await t.cli(['server', 'delete', 'crash-1'])).code, 0);
});

test('RBAC: no token is 401, a Reader cannot create (403), a Contributor can', async () => {
  const none = await t.apiStatus('GET', '/servers', undefined, '');
  assert.equal(none.status, 401);
  assert.equal((none.body as { error: { code: string } }).error.code, 'Unauthenticated');
  const forged = await t.apiStatus('GET', '/servers', undefined, 'pgw_000000000000_' + 'A'.repeat(43));
  assert.equal(forged.status, 401);

  const reader = await t.cli(['token', 'create', '--role', 'Reader']);
  assert.equal(reader.code, 0, reader.stderr);
  const readerToken = reader.stdout.trim();
  assert.match(readerToken, /^pgw_[0-9a-f]{12}_/);
  assert.equal((await t.apiStatus('GET', '/servers', undefined, readerToken)).status, 200);
  const denied = await t.apiStatus('POST', '/servers', { name: 'rbac-1', administratorLogin: 'frank', administratorLoginPassword: PASSWORD }, readerToken);
  assert.equal(denied.status, 403);
  assert.match(JSON.stringify(denied.body), /The Reader role is not allowed/);
  assert.equal((await t.apiStatus('POST', '/tokens', { role: 'Owner' }, readerToken)).status, 403);

  const contrib = (await t.cli(['token', 'create', '--role', 'Contributor'])).stdout.trim();
  const viaEnv = await t.cli(['server', 'create', 'rbac-1', '--admin-user', 'frank', '--admin-password', PASSWORD, '-o', 'json'], {
    PGWARDEN_API_URL: t.target.url,
    PGWARDEN_TOKEN: contrib,
    PGWARDEN_CA_FILE: t.platform.paths.caCert,
  });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  assert.equal(JSON.parse(viaEnv.stdout).state, 'Ready');
  assert.equal((await t.apiStatus('POST', '/tokens', { role: 'Reader' }, contrib)).status, 403);

  // The mutating call is an admin-action event naming who made it.
  const action = await until(
    'the admin action in the audit log',
    async () => auditEvents(t).find((e) => e.type === 'admin.action' && e.action === 'server.create' && e.target === '/servers/rbac-1'),
    10_000,
    50,
  );
  assert.equal((action.actor as { role: string }).role, 'Contributor');
  assert.equal(action.outcome, 'success');
  assert.equal((await t.cli(['server', 'delete', 'rbac-1'])).code, 0);
});

test('the OpenAPI document describes the servers resource', async () => {
  const doc = await t.api<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json');
  assert.match(doc.openapi, /^3\./);
  assert.ok(doc.paths['/servers']?.post);
  assert.ok(doc.paths['/servers/{name}']?.patch);
  const pem = await t.cli(['ca', 'export']);
  assert.match(pem.stdout, /^-----BEGIN CERTIFICATE-----/);
});
