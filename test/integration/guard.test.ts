// pgwarden_guard (ext/pgwarden_guard): on PostgreSQL < 16 a CREATEROLE administrator can grant
// himself pg_execute_server_program and run shell commands as the server's OS user. These tests
// start two throwaway clusters, one with the guard preloaded and one without, and show that the
// guard (and nothing else) refuses every escalation while ordinary administration still works.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import type pg from 'pg';
import {
  ADMIN,
  ADMIN_PASSWORD,
  binaries,
  denied,
  GRANT_DETAIL,
  isMember,
  MAINTENANCE,
  MAINTENANCE_PASSWORD,
  osAccount,
  refused,
  TestCluster,
  type Expected,
} from './guard-cluster.js';

const skipReason =
  binaries.majorVersion >= 16
    ? `PostgreSQL ${binaries.majorVersion} refuses these escalations itself (CREATEROLE was reworked in 16); pgwarden_guard is built and tested only for servers older than 16`
    : false;

describe('pgwarden_guard: a CREATEROLE administrator cannot escalate', { skip: skipReason }, () => {
  let root = '';
  let guarded: TestCluster;
  let unguarded: TestCluster;
  let alice: pg.Client;
  let maintenance: pg.Client;
  const clients: pg.Client[] = [];

  before(async () => {
    const account = osAccount();
    root = mkdtempSync('/tmp/pgw-guard-');
    chownSync(root, account.uid, account.gid);
    guarded = new TestCluster(root, 'guarded', account, 'pgwarden_guard');
    unguarded = new TestCluster(root, 'unguarded', account, '');
    await Promise.all([guarded.init(), unguarded.init()]);
    await Promise.all([guarded.start(), unguarded.start()]);
    await Promise.all([guarded.createPlatformRoles(), unguarded.createPlatformRoles()]);
    maintenance = await guarded.connect(MAINTENANCE, MAINTENANCE_PASSWORD);
    clients.push(maintenance);
    alice = await guarded.connect(ADMIN, ADMIN_PASSWORD);
    clients.push(alice);
  });

  after(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await Promise.all([guarded?.stop(), unguarded?.stop()]);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('the library is loaded in the guarded cluster only', async () => {
    const { rows } = await maintenance.query<{ shared_preload_libraries: string }>('show shared_preload_libraries');
    assert.equal(rows[0]!.shared_preload_libraries, 'pgwarden_guard');
    const other = await unguarded.connect(MAINTENANCE, MAINTENANCE_PASSWORD);
    clients.push(other);
    const { rows: none } = await other.query<{ shared_preload_libraries: string }>('show shared_preload_libraries');
    assert.equal(none[0]!.shared_preload_libraries, '');
    await other.end();
    const { rows: admin } = await alice.query<{ rolsuper: boolean; rolcreaterole: boolean }>(
      'select rolsuper, rolcreaterole from pg_roles where rolname = current_user',
    );
    assert.deepEqual(admin[0], { rolsuper: false, rolcreaterole: true });
  });

  it('without the guard the escalation works: GRANT pg_execute_server_program gives a shell', async () => {
    const a = await unguarded.connect(ADMIN, ADMIN_PASSWORD);
    clients.push(a);
    await a.query(`grant pg_execute_server_program to ${ADMIN}`);
    await a.query('create temp table shell_out (line text)');
    await a.query(`copy shell_out from program 'id -u'`);
    const { rows } = await a.query<{ line: string }>('select line from shell_out');
    assert.equal(rows[0]!.line, String(osAccount().uid), 'COPY FROM PROGRAM ran a command as the server OS user');
    // and so does the platform-role takeover the guard also blocks
    await a.query(`alter role pgwarden_admin login password 'Taken-Over-1!'`);
  });

  it('refuses GRANT of the server file/program roles', async () => {
    for (const role of ['pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files']) {
      await refused(alice, `grant ${role} to ${ADMIN}`, denied(`permission denied to grant role "${role}"`, GRANT_DETAIL));
    }
    await refused(
      alice,
      `grant pg_execute_server_program to ${ADMIN} with admin option`,
      denied('permission denied to grant role "pg_execute_server_program"', GRANT_DETAIL),
    );
    assert.equal(await isMember(maintenance, ADMIN, 'pg_execute_server_program'), false);
  });

  it("without the guard pg_read_all_data reads every password verifier, the maintenance superuser's too", async () => {
    const a = await unguarded.connect(ADMIN, ADMIN_PASSWORD);
    clients.push(a);
    await assert.rejects(a.query(`select rolpassword from pg_authid where rolname = '${MAINTENANCE}'`), /permission denied for table pg_authid/);
    await a.query(`grant pg_read_all_data to ${ADMIN}`);
    const { rows } = await a.query<{ rolpassword: string }>(`select rolpassword from pg_authid where rolname = '${MAINTENANCE}'`);
    assert.match(rows[0]!.rolpassword, /^SCRAM-SHA-256\$4096:/);
    await a.end();
  });

  it('refuses pg_read_all_data and pg_write_all_data, however they are asked for; pg_authid stays unreadable', async () => {
    for (const role of ['pg_read_all_data', 'pg_write_all_data']) {
      await refused(alice, `grant ${role} to ${ADMIN}`, denied(`permission denied to grant role "${role}"`, GRANT_DETAIL));
      await refused(alice, `create role sneaky_${role} in role ${role}`, denied(`permission denied to grant role "${role}"`, GRANT_DETAIL));
      await refused(alice, `alter group ${role} add user ${ADMIN}`, denied(`permission denied to grant role "${role}"`, GRANT_DETAIL));
      await refused(alice, `do $$ begin execute 'grant ${role} to ${ADMIN}'; end $$`, denied(`permission denied to grant role "${role}"`, GRANT_DETAIL));
      assert.equal(await isMember(maintenance, ADMIN, role), false);
    }
    await refused(alice, `select rolpassword from pg_authid where rolname = '${MAINTENANCE}'`, {
      code: '42501',
      message: 'permission denied for table pg_authid',
    });
    // A role the platform made a member of one is guarded like the role itself.
    await maintenance.query('create role all_reader nologin in role pg_read_all_data');
    try {
      await refused(alice, `grant all_reader to ${ADMIN}`, denied('permission denied to grant role "all_reader"', GRANT_DETAIL));
    } finally {
      await maintenance.query('drop role all_reader');
    }
  });

  it('refuses the grant when it comes from dynamic SQL too', async () => {
    await refused(
      alice,
      `do $$ begin execute 'grant pg_execute_server_program to ${ADMIN}'; end $$`,
      denied('permission denied to grant role "pg_execute_server_program"', GRANT_DETAIL),
    );
  });

  it('COPY TO/FROM PROGRAM stays refused', async () => {
    const copyDenied: Expected = {
      code: '42501',
      message: 'must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program',
    };
    await refused(alice, `copy (select 1) to program 'id'`, copyDenied);
    await refused(alice, `copy pg_class from program 'id'`, copyDenied);
  });

  it('refuses CREATE ROLE ... IN ROLE / IN GROUP a protected role', async () => {
    await refused(alice, 'create role x login in role pg_read_server_files', denied('permission denied to grant role "pg_read_server_files"', GRANT_DETAIL));
    await refused(
      alice,
      'create user y in group pg_execute_server_program',
      denied('permission denied to grant role "pg_execute_server_program"', GRANT_DETAIL),
    );
    await refused(
      alice,
      "create role second_admin login createrole password 'Second-Adm1n!' in role pgwarden_admin",
      denied('permission denied to grant role "pgwarden_admin"', GRANT_DETAIL),
    );
  });

  it('refuses CREATE ROLE ... ROLE/ADMIN that makes a protected role a member', async () => {
    await refused(
      alice,
      'create role trap role pgwarden_maintenance',
      denied(
        'permission denied to grant role "trap" to role "pgwarden_maintenance"',
        'Only the platform may change the memberships of role "pgwarden_maintenance".',
      ),
    );
    await refused(
      alice,
      'create role trap2 admin pgwarden_admin',
      denied('permission denied to grant role "trap2" to role "pgwarden_admin"', 'Only the platform may change the memberships of role "pgwarden_admin".'),
    );
  });

  it('refuses GRANT pgwarden_admin to another role (only the platform makes administrators)', async () => {
    await alice.query(`create role bob login password 'Bob-Guard-5z!'`);
    await refused(alice, 'grant pgwarden_admin to bob', denied('permission denied to grant role "pgwarden_admin"', GRANT_DETAIL));
    await refused(alice, 'alter group pgwarden_admin add user bob', denied('permission denied to grant role "pgwarden_admin"', GRANT_DETAIL));
    assert.equal(await isMember(maintenance, 'bob', 'pgwarden_admin'), false);
    await alice.query('drop role bob');
  });

  it('refuses REVOKE of protected roles and changes to the platform roles memberships', async () => {
    await refused(
      alice,
      `revoke pgwarden_admin from ${ADMIN}`,
      denied('permission denied to revoke role "pgwarden_admin"', 'Only the platform may revoke membership in this role.'),
    );
    await refused(
      alice,
      'revoke pg_monitor from pgwarden_admin',
      denied(
        'permission denied to revoke role "pg_monitor" from role "pgwarden_admin"',
        'Only the platform may change the memberships of role "pgwarden_admin".',
      ),
    );
  });

  it('refuses ALTER ROLE, ALTER ROLE SET, RENAME and DROP of platform roles', async () => {
    const alter = (role: string) => denied(`permission denied to alter role "${role}"`, 'Only the platform may alter this role.');
    await refused(alice, `alter role pgwarden_maintenance password 'Owned-It-1!'`, alter('pgwarden_maintenance'));
    await refused(alice, 'alter role pgwarden_maintenance nologin', alter('pgwarden_maintenance'));
    await refused(alice, `alter role pgwarden_admin login password 'Taken-Over-1!'`, alter('pgwarden_admin'));
    await refused(alice, `alter role pgwarden_admin set search_path = 'evil'`, alter('pgwarden_admin'));
    await refused(alice, `alter role pgwarden_maintenance in database postgres set work_mem = '1MB'`, alter('pgwarden_maintenance'));
    await refused(
      alice,
      'alter role pgwarden_maintenance rename to m',
      denied('permission denied to rename role "pgwarden_maintenance"', 'Only the platform may rename this role.'),
    );
    await refused(alice, 'drop role pgwarden_admin', denied('permission denied to drop role "pgwarden_admin"', 'Only the platform may drop this role.'));
    await refused(
      alice,
      'drop role if exists pgwarden_maintenance',
      denied('permission denied to drop role "pgwarden_maintenance"', 'Only the platform may drop this role.'),
    );
    await refused(
      alice,
      'drop owned by pgwarden_admin',
      denied('permission denied to drop objects owned by role "pgwarden_admin"', 'Only the platform may drop objects owned by this role.'),
    );
  });

  it('refuses ALTER ROLE CURRENT_USER after SET ROLE pgwarden_admin', async () => {
    await alice.query('set role pgwarden_admin');
    try {
      await refused(
        alice,
        "alter role current_user set work_mem = '1MB'",
        denied('permission denied to alter role "pgwarden_admin"', 'Only the platform may alter this role.'),
      );
    } finally {
      await alice.query('reset role');
    }
  });

  it('reserves the pgwarden_ role names', async () => {
    const reserved = (name: string): Expected => ({
      code: '42939',
      message: `role name "${name}" is reserved`,
      detail: 'Role names starting with "pgwarden_" are reserved for the platform.',
    });
    await refused(alice, 'create role pgwarden_audit', reserved('pgwarden_audit'));
    await refused(alice, 'create role app_r; alter role app_r rename to "PGWARDEN_x"', reserved('PGWARDEN_x'));
  });

  it('refuses a role the platform made a member of a server file/program role', async () => {
    await maintenance.query('create role file_loader nologin in role pg_read_server_files');
    try {
      await refused(alice, `grant file_loader to ${ADMIN}`, denied('permission denied to grant role "file_loader"', GRANT_DETAIL));
      await refused(
        alice,
        `alter role file_loader login password 'Loader-Pw-1!'`,
        denied('permission denied to alter role "file_loader"', 'Only the platform may alter this role.'),
      );
    } finally {
      await maintenance.query('drop role file_loader');
    }
  });

  it('refuses ALTER ROLE/DATABASE SET of the preload libraries', async () => {
    const param = (name: string) => denied(`permission denied to set parameter "${name}"`, 'Only the platform may set this parameter.');
    await refused(alice, `alter role ${ADMIN} set session_preload_libraries = 'auto_explain'`, param('session_preload_libraries'));
    await refused(alice, `alter role ${ADMIN} set local_preload_libraries = 'x'`, param('local_preload_libraries'));
    await refused(alice, `alter database postgres set local_preload_libraries = 'x'`, param('local_preload_libraries'));
  });

  it('ordinary administration still works', async () => {
    await alice.query(`create role app login password 'App-Guard-3w!'`);
    await alice.query('create role readers nologin');
    await alice.query('grant readers to app');
    await alice.query('grant pg_read_all_stats to app');
    await alice.query(`alter role app set work_mem = '8MB'`);
    await alice.query('alter role app rename to app2');
    await alice.query('alter role app2 rename to app');
    await alice.query(`alter role app password 'App-Guard-4w!'`);
    await alice.query(`alter role ${ADMIN} password '${ADMIN_PASSWORD}'`);
    await alice.query('create database appdb');
    await alice.query(`alter database appdb set work_mem = '16MB'`);
    await alice.query('revoke readers from app');
    assert.equal(await isMember(maintenance, 'app', 'pg_read_all_stats'), true);
    const { rows } = await maintenance.query<{ setconfig: string[] }>(
      `select setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole where r.rolname = 'app'`,
    );
    assert.deepEqual(rows[0]!.setconfig, ['work_mem=8MB']);
    const app = await guarded.connect('app', 'App-Guard-4w!', 'appdb');
    clients.push(app);
    const { rows: wm } = await app.query<{ work_mem: string }>('show work_mem');
    assert.equal(wm[0]!.work_mem, '8MB');
    await app.end();
    await alice.query('drop database appdb');
    await alice.query('drop role app');
    await alice.query('drop role readers');
  });

  it('the platform (superuser) is not restricted', async () => {
    await maintenance.query(`create role second_admin login createdb createrole nosuperuser in role pgwarden_admin`);
    await maintenance.query('grant pg_execute_server_program to second_admin');
    await maintenance.query('revoke pg_execute_server_program from second_admin');
    await maintenance.query(`alter role pgwarden_admin set work_mem = '2MB'`);
    await maintenance.query('alter role pgwarden_admin reset work_mem');
    await maintenance.query('drop role second_admin');
    assert.equal(await isMember(maintenance, ADMIN, 'pgwarden_admin'), true);
  });
});
