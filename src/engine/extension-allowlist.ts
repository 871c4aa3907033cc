// Extensions a server may have (the `pgwarden.extensions` parameter, like the reference
// service's azure.extensions). Trusted extensions (PostgreSQL 13+ lets a database owner create
// them) are created by the administrator himself; the others on the list are created by the
// platform's maintenance superuser on his behalf (`pgwarden server extension create`).
//
// The list is enforced on the server by an event trigger at the end of every CREATE EXTENSION
// (installed by the platform in every database, template0 and template1 included, so every new
// database has it): it reads the list from the platform-written configuration file
// (pg_file_settings, which only a superuser reads: the function is SECURITY DEFINER), so a
// session's own `SET pgwarden.extensions` changes nothing, and refuses an extension not on it.
// Extensions created by a superuser (the platform's pgaudit, or created on the owner's behalf)
// are not checked. No list in the file: every CREATE EXTENSION by a non-superuser is refused.

/** Trusted extensions of PostgreSQL's contrib: the default list (what PostgreSQL allows anyway). */
export const TRUSTED_EXTENSIONS: readonly string[] = [
  'btree_gin',
  'btree_gist',
  'citext',
  'cube',
  'dict_int',
  'fuzzystrmatch',
  'hstore',
  'intarray',
  'isn',
  'lo',
  'ltree',
  'pg_trgm',
  'pgcrypto',
  'plpgsql',
  'seg',
  'tablefunc',
  'tcn',
  'tsm_system_rows',
  'tsm_system_time',
  'unaccent',
  'uuid-ossp',
];

/** Extensions only a superuser creates, which the platform creates on the owner's behalf, and
 * what it grants the server's administrators on each. */
export const SUPERUSER_EXTENSIONS: readonly string[] = ['pg_stat_statements', 'pg_buffercache', 'pgstattuple'];

export const EXTENSION_GRANTS: Readonly<Record<string, readonly string[]>> = {
  // Reading is open to all (the text of other roles' statements needs pg_read_all_stats, which
  // pg_monitor gives); resetting is superuser-only by default.
  pg_stat_statements: ['grant execute on function pg_stat_statements_reset(oid, oid, bigint) to %ROLE%'],
  // pg_buffercache and pgstattuple grant themselves to pg_monitor / pg_stat_scan_tables, which the administrators have.
  pg_buffercache: [],
  pgstattuple: [],
};

export const EXTENSION_TRIGGER = 'pgwarden_extension_allowlist';

/** The trigger function and the event trigger, created by the maintenance superuser in a database. */
export function extensionTriggerSql(exists: boolean): string[] {
  const fn = `create or replace function pg_catalog.${EXTENSION_TRIGGER}() returns event_trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $fn$
declare
  allowed text[];
  bad text;
begin
  if coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false) then
    return;
  end if;
  select pg_catalog.string_to_array(pg_catalog.replace(f.setting, ' ', ''), ',') into allowed
    from pg_catalog.pg_file_settings f
   where f.name = 'pgwarden.extensions' and f.error is null
   order by f.seqno desc limit 1;
  for bad in
    select e.extname::text
      from pg_catalog.pg_event_trigger_ddl_commands() c
      join pg_catalog.pg_extension top on top.oid = c.objid
      join pg_catalog.pg_extension e on e.xmin = top.xmin
     where c.classid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       and (allowed is null or not (e.extname::text = any (allowed)))
  loop
    raise exception 'extension "%" is not allowed on this server', bad
      using errcode = '42501',
            detail = 'Allowed extensions: ' || coalesce(pg_catalog.array_to_string(allowed, ', '), 'none') || '.',
            hint = 'The server owner allows extensions with: pgwarden server configuration set --name pgwarden.extensions';
  end loop;
end
$fn$`;
  return [
    fn,
    ...(exists
      ? []
      : [`create event trigger ${EXTENSION_TRIGGER} on ddl_command_end when tag in ('CREATE EXTENSION') execute function pg_catalog.${EXTENSION_TRIGGER}()`]),
  ];
}
