// Versioned catalog schema. Each migration runs once, in order, in its own transaction, under
// an advisory lock so several platform hosts sharing one catalog never race.
import type pg from 'pg';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'servers and api tokens',
    sql: `
      create table servers (
        id serial primary key,
        name text not null unique,
        administrator_login text not null,
        ssl_enforcement text not null default 'Enabled',
        minimal_tls_version text not null default 'TLS1_2',
        public_network_access text not null default 'Enabled',
        state text not null,
        host_id text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create table api_tokens (
        id text primary key,
        name text not null,
        role text not null check (role in ('Owner','Contributor','Reader','SecurityAdmin')),
        token_hash bytea not null unique,
        created_at timestamptz not null default now(),
        created_by text,
        revoked_at timestamptz
      );
      create function notify_change() returns trigger language plpgsql as $$
      declare
        row_name text;
      begin
        if tg_op = 'DELETE' then row_name := old.name; else row_name := new.name; end if;
        perform pg_notify('pgwarden_changes', json_build_object('table', tg_table_name, 'op', tg_op, 'name', row_name)::text);
        return null;
      end $$;
      create trigger servers_changed after insert or update or delete on servers
        for each row execute function notify_change();
    `,
  },
];

export async function migrate(client: pg.ClientBase): Promise<void> {
  await client.query('select pg_advisory_lock(727272)');
  try {
    await client.query(
      'create table if not exists schema_migrations (version int primary key, name text not null, applied_at timestamptz not null default now())',
    );
    const { rows } = await client.query<{ version: number }>('select version from schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('begin');
      try {
        await client.query(m.sql);
        await client.query('insert into schema_migrations (version, name) values ($1, $2)', [m.version, m.name]);
        await client.query('commit');
      } catch (err) {
        await client.query('rollback');
        throw new Error(`catalog migration ${m.version} (${m.name}) failed: ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('select pg_advisory_unlock(727272)');
  }
}
