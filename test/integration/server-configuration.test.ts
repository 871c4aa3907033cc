// Server parameters and extensions (issue 16 item 4) with real clients through the gateway:
// psql and postgres.js. `configuration set max_prepared_transactions 10 --restart` lets PREPARE
// TRANSACTION succeed; wal_level=logical gives the administrator publications and logical slots;
// parameters that would weaken the perimeter are refused with their reason; a Reader cannot set;
// the extension allow-list holds in every database, template0 copies included; values survive a
// platform restart; pg_read_all_data granted before the guard refused it is revoked at start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import postgres from 'postgres';
import { Platform } from '../../src/app/platform.js';
import { allowLoopback, auditEvents, runCli, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';

const PASSWORD = 'Conf-Passw0rd!';
const SERVER = 'conf1';
const HOST = `${SERVER}.pgwarden.localhost`;
let t: TestPlatform;
let ca: string;

before(async () => {
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  ca = t.platform.paths.caCert;
});
after(async () => {
  await t?.stop();
});

/** psql through the gateway with verify-full, as the administrator. */
function asAdmin(sql: string | string[], dbname = 'postgres') {
  const args = (Array.isArray(sql) ? sql : [sql]).flatMap((q) => ['-c', q]);
  return psql(conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca, dbname }), PASSWORD, args);
}

/** postgres.js through the gateway with verify-full. */
function pgjs(database = 'postgres') {
  return postgres({
    host: '127.0.0.1',
    port: t.platform.gateway.port,
    username: 'alice',
    password: PASSWORD,
    database,
    ssl: { ca: readFileSync(ca, 'utf8'), servername: HOST, rejectUnauthorized: true },
    max: 1,
    onnotice: () => undefined,
  });
}

interface Conf {
  name: string;
  value: string;
  defaultValue: string;
  dataType: string;
  allowedValues: string;
  isDynamic: boolean;
  pendingRestart: boolean;
  source: string;
}

function cliJson<T>(args: string[]): Promise<T> {
  return t.cli([...args, '-o', 'json']).then((r) => {
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  });
}

test('max_prepared_transactions 10 --restart: PREPARE TRANSACTION succeeds through the gateway (psql)', async () => {
  const before = await asAdmin("begin; create table two_phase (id int); prepare transaction 'tx1'");
  assert.notEqual(before.code, 0);
  assert.match(before.stderr, /ERROR: {2}prepared transactions are disabled/);

  const shown = await cliJson<Conf>(['server', 'configuration', 'show', '--server', SERVER, '--name', 'max_prepared_transactions']);
  assert.deepEqual(
    {
      value: shown.value,
      defaultValue: shown.defaultValue,
      dataType: shown.dataType,
      allowedValues: shown.allowedValues,
      isDynamic: shown.isDynamic,
      pendingRestart: shown.pendingRestart,
    },
    { value: '0', defaultValue: '0', dataType: 'integer', allowedValues: '0-1000', isDynamic: false, pendingRestart: false },
  );
  const set = await cliJson<Conf>(['server', 'configuration', 'set', '--server', SERVER, '--name', 'max_prepared_transactions', '--value', '10', '--restart']);
  assert.equal(set.value, '10');
  assert.equal(set.pendingRestart, false);

  const r = await asAdmin("begin; create table two_phase (id int); insert into two_phase values (1); prepare transaction 'tx1'");
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await asAdmin('select gid from pg_prepared_xacts')).stdout, 'tx1');
  assert.equal((await asAdmin("commit prepared 'tx1'")).code, 0);
  assert.equal((await asAdmin('select id from two_phase')).stdout, '1');

  const events = await until('the admin.action record', async () =>
    auditEvents<{ type: string; action?: string; target?: string; outcome?: string }>(t).find(
      (e) => e.type === 'admin.action' && e.action === 'configuration.set',
    ),
  );
  assert.equal(events.target, `/servers/${SERVER}/configurations/max_prepared_transactions`);
  assert.equal(events.outcome, 'success');
});

test('wal_level=logical: a publication FOR TABLE and logical slots work for the administrator (postgres.js)', async () => {
  const sql = pgjs();
  try {
    await sql`create table orders (id int primary key, item text)`;
    // Before: no replication attribute, replica WAL.
    await assert.rejects(sql`select pg_create_logical_replication_slot('cdc_before', 'test_decoding')`, (err: Error & { code?: string }) => {
      assert.equal(err.code, '42501');
      assert.equal(err.message, 'must be superuser or replication role to use replication slots');
      return true;
    });
  } finally {
    await sql.end();
  }
  const set = await t.api<Conf>('PUT', `/servers/${SERVER}/configurations/wal_level`, { value: 'logical', restart: true });
  assert.equal(set.value, 'logical');
  assert.equal(set.pendingRestart, false);

  const cdc = pgjs();
  try {
    assert.equal((await cdc`show wal_level`)[0]!.wal_level, 'logical');
    await cdc`create publication orders_pub for table orders`;
    const pubs = await cdc`select pubname, tablename from pg_publication_tables`;
    assert.deepEqual(
      pubs.map((p) => [p.pubname, p.tablename]),
      [['orders_pub', 'orders']],
    );
    await cdc`select pg_create_logical_replication_slot('cdc_test', 'test_decoding')`;
    await cdc`select pg_create_logical_replication_slot('cdc_pgoutput', 'pgoutput')`;
    await cdc`insert into orders values (1, 'book')`;
    const changes = await cdc`select data from pg_logical_slot_get_changes('cdc_test', null, null)`;
    assert.ok(
      changes.some((c) => c.data === "table public.orders: INSERT: id[integer]:1 item[text]:'book'"),
      JSON.stringify(changes),
    );
    const binary =
      await cdc`select count(*)::int as n from pg_logical_slot_get_binary_changes('cdc_pgoutput', null, null, 'proto_version', '1', 'publication_names', 'orders_pub')`;
    assert.ok(binary[0]!.n >= 3); // BEGIN, RELATION, INSERT, COMMIT
    // REPLICATION does not open replication connections: the gateway and pg_hba.conf refuse them.
    const walsender = await psql(conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca, replication: 'database' }), PASSWORD, [
      '-c',
      'IDENTIFY_SYSTEM',
    ]);
    assert.notEqual(walsender.code, 0, walsender.stdout);
    await cdc`select pg_drop_replication_slot('cdc_test')`;
    await cdc`select pg_drop_replication_slot('cdc_pgoutput')`;
  } finally {
    await cdc.end();
  }
});

test('parameters that would weaken the perimeter are refused with the reason; bad values too', async () => {
  const cases: [string, string, string][] = [
    [
      'ssl',
      'off',
      "Parameter 'ssl' cannot be set: clients reach the server only through the gateway, which terminates TLS; use sslEnforcement and minimalTlsVersion instead.",
    ],
    [
      'listen_addresses',
      '*',
      "Parameter 'listen_addresses' cannot be set: a managed server listens on no TCP port, only on a Unix socket the gateway reaches; opening it would bypass the perimeter.",
    ],
    ['hba_file', '/tmp/x', "Parameter 'hba_file' cannot be set: the platform writes and owns the server's files and their locations."],
    [
      'password_encryption',
      'md5',
      "Parameter 'password_encryption' cannot be set: authentication is the platform's: only SCRAM-SHA-256 verifiers, checked at the gateway.",
    ],
    ['archive_command', '/bin/true', "Parameter 'archive_command' cannot be set: the WAL archive is the platform's encrypted backup stream."],
    [
      'log_directory',
      '/tmp',
      "Parameter 'log_directory' cannot be set: the platform reads the server log (pgAudit records) from where and in the format it configured.",
    ],
    [
      'session_preload_libraries',
      'auto_explain',
      "Parameter 'session_preload_libraries' cannot be set: loading libraries is limited to the allow-list of shared_preload_libraries.",
    ],
    ['pgaudit.log', 'none', "Parameter 'pgaudit.log' cannot be set: pgAudit is configured by the server's audit settings (pgwarden server audit update)."],
    ['pgwarden_audit.gateway_session', 'on', "Parameter 'pgwarden_audit.gateway_session' cannot be set: this parameter is the platform's own."],
    [
      'shared_preload_libraries',
      'pg_stat_statements,passwordcheck',
      "Invalid value 'pg_stat_statements,passwordcheck' for parameter 'shared_preload_libraries': 'passwordcheck' is not a library the owner may preload (allowed: pg_stat_statements, auto_explain, pg_prewarm; the platform's own libraries are always loaded).",
    ],
    [
      'work_mem',
      "8MB'\nlisten_addresses = '*",
      "Invalid value '8MB'\nlisten_addresses = '*' for parameter 'work_mem': quotes, backslashes, # and control characters (such as newlines) are not allowed.",
    ],
    ['work_mem', '8XB', "Invalid value '8XB' for parameter 'work_mem': it must be an integer (a number of kB, or with a unit: kB, MB, GB)."],
    ['max_connections', '100000', "Invalid value '100000' for parameter 'max_connections': it must be between 25 and 1000."],
    ['wal_level', 'minimal', "Invalid value 'minimal' for parameter 'wal_level': it must be one of: replica, logical."],
    [
      'pg_stat_statements.max',
      '1000',
      "Parameter 'pg_stat_statements.max' can only be set when pg_stat_statements is in shared_preload_libraries: set shared_preload_libraries to pg_stat_statements first.",
    ],
    [
      'no_such_thing',
      '1',
      "Parameter 'no_such_thing' is not a server parameter that can be set. 'pgwarden server configuration list' shows the ones that can.",
    ],
  ];
  for (const [name, value, message] of cases) {
    const r = await t.apiStatus('PUT', `/servers/${SERVER}/configurations/${encodeURIComponent(name)}`, { value });
    assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body, { error: { code: 'InvalidArgument', message } });
  }
  // The CLI says the same.
  const cli = await t.cli(['server', 'configuration', 'set', '--server', SERVER, '--name', 'listen_addresses', '--value', '*']);
  assert.equal(cli.code, 1);
  assert.equal(
    cli.stderr.trim(),
    "Error (400 InvalidArgument): Parameter 'listen_addresses' cannot be set: a managed server listens on no TCP port, only on a Unix socket the gateway reaches; opening it would bypass the perimeter.",
  );
  // Nothing reached the server: still no TCP listener and the file has no such line.
  const conf = readFileSync(`${t.platform.paths.serverData(t.platform.snapshots.snapshot.servers.get(SERVER)!.id)}/pgwarden.conf`, 'utf8');
  assert.match(conf, /^listen_addresses = ''$/m);
  assert.doesNotMatch(conf, /\*/);
});

test('a Reader lists and shows but cannot set (403); the administrator cannot ALTER SYSTEM', async () => {
  const reader = (await t.api<{ token: string }>('POST', '/tokens', { role: 'Reader', name: 'reader' })).token;
  const list = await t.api<{ value: Conf[] }>('GET', `/servers/${SERVER}/configurations`, undefined, reader);
  assert.ok(list.value.some((c) => c.name === 'work_mem' && c.isDynamic && c.allowedValues === '64-2097151'));
  assert.ok(!list.value.some((c) => c.name === 'pg_stat_statements.max')); // only when pg_stat_statements is loaded
  const r = await t.apiStatus('PUT', `/servers/${SERVER}/configurations/work_mem`, { value: '8MB' }, reader);
  assert.equal(r.status, 403);
  assert.deepEqual(r.body, { error: { code: 'Forbidden', message: 'The Reader role is not allowed to perform this operation.' } });
  const doc = await t.api<{ paths: Record<string, Record<string, unknown>> }>('GET', '/openapi.json', undefined, reader);
  assert.deepEqual(Object.keys(doc.paths['/servers/{name}/configurations/{parameter}'] ?? {}).sort(), ['get', 'put']);
  assert.ok(doc.paths['/servers/{name}/configurations']?.get);
  assert.ok(doc.paths['/servers/{name}/extensions']?.post);
  const alter = await asAdmin("alter system set listen_addresses = '*'");
  assert.notEqual(alter.code, 0);
  assert.match(alter.stderr, /ERROR: {2}permission denied to set parameter "listen_addresses"/);
});

test('dynamic parameters apply with a reload; restart-only ones without --restart are pending', async () => {
  const pid = t.platform.servers.postmasterPid(t.platform.snapshots.snapshot.servers.get(SERVER)!.id);
  const wm = await cliJson<Conf>(['server', 'configuration', 'set', '--server', SERVER, '--name', 'work_mem', '--value', '8MB']);
  assert.deepEqual([wm.value, wm.source, wm.pendingRestart], ['8MB', 'user-override', false]);
  await cliJson<Conf>(['server', 'configuration', 'set', '--server', SERVER, '--name', 'statement_timeout', '--value', '1500']);
  assert.equal((await asAdmin('show work_mem')).stdout, '8MB');
  assert.equal((await asAdmin('show statement_timeout')).stdout, '1500ms');
  const slow = await asAdmin('select pg_sleep(5)');
  assert.match(slow.stderr, /ERROR: {2}canceling statement due to statement timeout/);
  await cliJson<Conf>(['server', 'configuration', 'set', '--server', SERVER, '--name', 'statement_timeout', '--value', '0']);

  const sb = await cliJson<Conf>(['server', 'configuration', 'set', '--server', SERVER, '--name', 'shared_buffers', '--value', '64MB']);
  assert.deepEqual([sb.value, sb.pendingRestart, sb.isDynamic], ['64MB', true, false]);
  assert.equal((await asAdmin('show shared_buffers')).stdout, '32MB');
  assert.equal(t.platform.servers.postmasterPid(t.platform.snapshots.snapshot.servers.get(SERVER)!.id), pid); // no restart

  // A time zone PostgreSQL does not know is rolled back with PostgreSQL's own error.
  const tz = await t.apiStatus('PUT', `/servers/${SERVER}/configurations/timezone`, { value: 'Mars/Olympus' });
  assert.equal(tz.status, 400);
  assert.match(
    (tz.body as { error: { message: string } }).error.message,
    /^The server did not accept timezone = 'Mars\/Olympus': PostgreSQL refused the configuration: timezone setting could not be applied The previous configuration was restored\.$/,
  );
  assert.equal((await t.api<Conf>('GET', `/servers/${SERVER}/configurations/timezone`)).source, 'system-default');
  assert.equal((await asAdmin('select 1')).code, 0);
});

test('the extension allow-list: trusted ones by the administrator, others by the platform, nothing else anywhere', async () => {
  // Default: PostgreSQL's trusted extensions, as before.
  assert.equal((await asAdmin('create extension pgcrypto')).code, 0);
  // pg_stat_statements is not trusted: PostgreSQL refuses it to the administrator.
  const untrusted = await asAdmin('create extension pg_stat_statements');
  assert.match(untrusted.stderr, /ERROR: {2}permission denied to create extension "pg_stat_statements"/);
  const notListed = await t.apiStatus('POST', `/servers/${SERVER}/extensions`, { name: 'pg_stat_statements' });
  assert.equal(notListed.status, 400);
  assert.match(
    (notListed.body as { error: { message: string } }).error.message,
    /^Extension 'pg_stat_statements' is not in the server's pgwarden.extensions \(/,
  );

  await cliJson<Conf>(['server', 'configuration', 'set', '--server', SERVER, '--name', 'pgwarden.extensions', '--value', 'pgcrypto,pg_stat_statements']);
  await cliJson<Conf>([
    'server',
    'configuration',
    'set',
    '--server',
    SERVER,
    '--name',
    'shared_preload_libraries',
    '--value',
    'pg_stat_statements',
    '--restart',
  ]);
  assert.equal((await asAdmin('show shared_preload_libraries')).stdout.split(',')[0], 'pg_stat_statements');
  const created = await cliJson<{ name: string; database: string; created: boolean }>([
    'server',
    'extension',
    'create',
    '--server',
    SERVER,
    '--name',
    'pg_stat_statements',
  ]);
  assert.deepEqual([created.name, created.database, created.created], ['pg_stat_statements', 'postgres', true]);
  const stats = await asAdmin('select count(*) > 0 from pg_stat_statements');
  assert.equal(stats.stdout, 't', stats.stderr);
  assert.equal((await asAdmin('select pg_stat_statements_reset()')).code, 0);

  // hstore is trusted but no longer listed: refused in this database...
  const refused = await asAdmin('create extension hstore');
  assert.match(refused.stderr, /ERROR: {2}extension "hstore" is not allowed on this server\nDETAIL: {2}Allowed extensions: pgcrypto, pg_stat_statements\./);
  // ...a session's own SET changes nothing...
  const set = await asAdmin(["set pgwarden.extensions = 'hstore'", 'create extension hstore']);
  assert.match(set.stderr, /ERROR: {2}extension "hstore" is not allowed on this server/);
  // ...nor does running it from PL/pgSQL, or removing the trigger.
  const nested = await asAdmin("do $$ begin execute 'create extension hstore'; end $$");
  assert.match(nested.stderr, /ERROR: {2}extension "hstore" is not allowed on this server/);
  for (const q of ['drop event trigger pgwarden_extension_allowlist', 'alter event trigger pgwarden_extension_allowlist disable']) {
    const r = await asAdmin(q);
    assert.match(r.stderr, /ERROR: {2}must be owner of event trigger pgwarden_extension_allowlist/, q);
  }
  const replace = await asAdmin(
    'create or replace function pg_catalog.pgwarden_extension_allowlist() returns event_trigger language plpgsql as $$ begin end $$',
  );
  assert.match(replace.stderr, /ERROR: {2}permission denied for schema pg_catalog/);
  // ...and in new databases, from template1 or template0 alike.
  assert.equal((await asAdmin('create database fresh1')).code, 0);
  assert.equal((await asAdmin('create database fresh0 template template0')).code, 0);
  for (const db of ['fresh1', 'fresh0']) {
    const r = await asAdmin('create extension hstore', db);
    assert.match(r.stderr, /ERROR: {2}extension "hstore" is not allowed on this server/, db);
    assert.equal((await asAdmin('create extension pgcrypto', db)).code, 0, db);
  }
  // The administrator's pg_dump carries no event trigger he could not restore (it is pgAudit's member).
  const dump = await new Promise<string>((resolve, reject) =>
    execFile(
      'pg_dump',
      [conninfo(t, { host: HOST, user: 'alice', sslmode: 'verify-full', sslrootcert: ca, dbname: 'fresh0' })],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: PASSWORD } },
      (err, out) => (err ? reject(err) : resolve(out)),
    ),
  );
  assert.match(dump, /CREATE EXTENSION IF NOT EXISTS pgcrypto/);
  assert.doesNotMatch(dump, /EVENT TRIGGER|pgwarden_extension_allowlist/);
  // pg_stat_statements.* are offered once it is loaded.
  const list = await t.api<{ value: Conf[] }>('GET', `/servers/${SERVER}/configurations`);
  assert.ok(list.value.some((c) => c.name === 'pg_stat_statements.track'));
});

test('pg_read_all_data granted before the guard refused it is revoked when the server starts', async () => {
  const id = t.platform.snapshots.snapshot.servers.get(SERVER)!.id;
  // The state an older platform left: the membership exists (granted as superuser here, since the guard refuses it now).
  const m = await t.platform.servers.connect(id);
  await m.query('grant pg_read_all_data, pg_write_all_data to alice');
  await m.end();
  assert.equal((await asAdmin('select count(*) > 0 from pg_authid')).stdout, 't');
  assert.equal((await t.cli(['server', 'stop', SERVER])).code, 0);
  assert.equal((await t.cli(['server', 'start', SERVER])).code, 0);
  const r = await asAdmin('select rolpassword from pg_authid');
  assert.match(r.stderr, /ERROR: {2}permission denied for table pg_authid/);
  const ev = await until('the revocation record', async () =>
    auditEvents<{ type: string; server?: string; details?: { revoked?: string[] } }>(t).find((e) => e.type === 'server.data_roles_revoked'),
  );
  assert.equal(ev.server, SERVER);
  assert.deepEqual([...(ev.details?.revoked ?? [])].sort(), ['alice: pg_read_all_data', 'alice: pg_write_all_data']);
});

test("a restore is a new server with its source's parameters (a pending prepared transaction comes along)", async () => {
  assert.equal((await asAdmin(["begin; insert into two_phase values (2); prepare transaction 'pending-tx'"])).code, 0);
  const b = await t.cli(['backup', 'create', '--server', SERVER]);
  assert.equal(b.code, 0, b.stderr);
  const r = await t.cli(['server', 'restore', `${SERVER}-copy`, '--source', SERVER]);
  assert.equal(r.code, 0, r.stderr);
  const copy = await cliJson<Conf>(['server', 'configuration', 'show', '--server', `${SERVER}-copy`, '--name', 'max_prepared_transactions']);
  assert.deepEqual([copy.value, copy.source, copy.pendingRestart], ['10', 'user-override', false]);
  assert.equal((await cliJson<Conf>(['server', 'configuration', 'show', '--server', `${SERVER}-copy`, '--name', 'wal_level'])).value, 'logical');
  await allowLoopback(t, `${SERVER}-copy`);
  const onCopy = (q: string) =>
    psql(conninfo(t, { host: `${SERVER}-copy.pgwarden.localhost`, user: 'alice', sslmode: 'verify-full', sslrootcert: ca }), PASSWORD, ['-c', q]);
  assert.equal((await onCopy('select gid from pg_prepared_xacts')).stdout, 'pending-tx');
  assert.equal((await onCopy('show work_mem')).stdout, '8MB');
  assert.equal((await onCopy("rollback prepared 'pending-tx'")).code, 0);
  assert.equal((await asAdmin("commit prepared 'pending-tx'")).code, 0);
  assert.equal((await asAdmin('select count(*) from two_phase')).stdout, '2');
});

test('parameters survive a platform restart (and apply to the restarted server)', async () => {
  const options = t.platform.options;
  await t.platform.stop();
  const restarted = new Platform(options);
  await restarted.start();
  (t as { platform: Platform }).platform = restarted;
  try {
    const show = (name: string) =>
      runCli(['--data-dir', t.dataDir, 'server', 'configuration', 'show', '--server', SERVER, '--name', name, '-o', 'json']).then(
        (r) => JSON.parse(r.stdout) as Conf,
      );
    assert.equal((await show('work_mem')).value, '8MB');
    assert.equal((await show('max_prepared_transactions')).value, '10');
    const sb = await show('shared_buffers');
    assert.deepEqual([sb.value, sb.pendingRestart], ['64MB', false]); // the restart applied it
    assert.equal((await asAdmin('show work_mem')).stdout, '8MB');
    assert.equal((await asAdmin('show shared_buffers')).stdout, '64MB');
    assert.equal((await asAdmin('show wal_level')).stdout, 'logical');
    const r = await asAdmin(["begin; prepare transaction 'after-restart'", "commit prepared 'after-restart'"]);
    assert.equal(r.code, 0, r.stderr);
  } finally {
    await restarted.stop(); // t.stop() then removes what is left (it stops the first platform object)
  }
});
