// What the platform puts right on a managed server each time it starts, whatever happened while
// it was down or before the platform knew better:
//   - pg_read_all_data / pg_write_all_data are held by no role but the platform's own (an
//     administrator who granted them to himself before pgwarden_guard refused it loses them);
//   - the server's administrators (members of the admin group that can log in) have REPLICATION
//     exactly when wal_level is logical (logical slots for CDC tools; the gateway refuses
//     replication connections and pg_hba.conf has no replication line for them);
//   - every database has the extension allow-list trigger (engine/extension-allowlist.ts).
import type pg from 'pg';
import { ADMIN_GROUP_ROLE, MAINTENANCE_ROLE, ident } from './roles.js';
import { EXTENSION_TRIGGER, extensionTriggerSql } from './extension-allowlist.js';

const PLATFORM_ROLES = [MAINTENANCE_ROLE];
const DATA_ROLES = ['pg_read_all_data', 'pg_write_all_data'];

export async function revokeDataRoles(client: pg.ClientBase): Promise<string[]> {
  const { rows } = await client.query<{ member: string; role: string }>(
    `select m.rolname as member, g.rolname as role
       from pg_auth_members a join pg_roles g on g.oid = a.roleid join pg_roles m on m.oid = a.member
      where g.rolname = any($1) and m.rolname <> all($2)`,
    [DATA_ROLES, PLATFORM_ROLES],
  );
  for (const r of rows) await client.query(`revoke ${ident(r.role)} from ${ident(r.member)} cascade`);
  return rows.map((r) => `${r.member}: ${r.role}`);
}

/** REPLICATION for the administrators when wal_level is logical, none otherwise. */
export async function alignReplication(client: pg.ClientBase): Promise<void> {
  const { rows: lvl } = await client.query<{ wal_level: string }>('show wal_level');
  const logical = lvl[0]?.wal_level === 'logical';
  const { rows } = await client.query<{ rolname: string; rolreplication: boolean }>(
    `select m.rolname, m.rolreplication from pg_auth_members a join pg_roles g on g.oid = a.roleid join pg_roles m on m.oid = a.member
      where g.rolname = $1 and m.rolcanlogin and not m.rolsuper`,
    [ADMIN_GROUP_ROLE],
  );
  for (const r of rows) {
    if (r.rolreplication !== logical) await client.query(`alter role ${ident(r.rolname)} ${logical ? 'replication' : 'noreplication'}`);
  }
  if (!logical) {
    // Nobody else but the platform keeps it (a role made while wal_level was logical).
    const { rows: others } = await client.query<{ rolname: string }>(
      'select rolname from pg_roles where rolreplication and not rolsuper and rolname <> all($1)',
      [PLATFORM_ROLES],
    );
    for (const r of others) await client.query(`alter role ${ident(r.rolname)} noreplication`);
  }
}

/** The databases to put the extension trigger in (template0 too: it is opened for a moment). */
export async function databases(client: pg.ClientBase): Promise<{ name: string; allowConn: boolean }[]> {
  const { rows } = await client.query<{ datname: string; datallowconn: boolean }>('select datname, datallowconn from pg_database order by oid');
  return rows.map((r) => ({ name: r.datname, allowConn: r.datallowconn }));
}

/** The trigger in one database. With pgAudit (which every database of the server has, template0
 * included) the trigger and its function become members of that extension, so an administrator's
 * pg_dump leaves them out (it writes CREATE EXTENSION IF NOT EXISTS pgaudit instead) and his
 * restore does not fail on a CREATE EVENT TRIGGER only a superuser may run. */
export async function installExtensionTrigger(client: pg.ClientBase, pgaudit: boolean): Promise<void> {
  const { rows } = await client.query('select 1 from pg_event_trigger where evtname = $1', [EXTENSION_TRIGGER]);
  for (const q of extensionTriggerSql(rows.length > 0)) await client.query(q);
  if (!pgaudit) return;
  await client.query('create extension if not exists pgaudit');
  const { rows: members } = await client.query(
    `select 1 from pg_depend d join pg_event_trigger t on t.oid = d.objid
      where d.classid = 'pg_event_trigger'::regclass and d.deptype = 'e' and t.evtname = $1`,
    [EXTENSION_TRIGGER],
  );
  if (members.length) return;
  await client.query(`alter extension pgaudit add function pg_catalog.${EXTENSION_TRIGGER}()`);
  await client.query(`alter extension pgaudit add event trigger ${EXTENSION_TRIGGER}`);
}

/** Runs `install` in every database, opening those that refuse connections (template0) only for it. */
export async function inEveryDatabase(
  admin: pg.ClientBase,
  connect: (database: string) => Promise<pg.Client>,
  install: (client: pg.ClientBase) => Promise<void>,
): Promise<void> {
  for (const db of await databases(admin)) {
    if (!db.allowConn) {
      // Only a superuser ever connects to template0, even in the moment it allows connections.
      if (db.name === 'template0') await admin.query('revoke connect on database template0 from public');
      await admin.query(`alter database ${ident(db.name)} allow_connections true`);
    }
    try {
      const c = await connect(db.name);
      try {
        await install(c);
      } finally {
        await c.end();
      }
    } finally {
      if (!db.allowConn) await admin.query(`alter database ${ident(db.name)} allow_connections false`);
    }
  }
}
