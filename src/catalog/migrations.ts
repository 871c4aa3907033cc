// Versioned catalog schema. Each migration runs once, in order, in its own transaction, under
// an advisory lock so several platform hosts sharing one catalog never race.
import type pg from 'pg';
import { keyedTokenHash } from './tokens-repo.js';

/** Platform secrets a migration may need (they never go into the catalog). */
export interface MigrationContext {
  /** The key of API token hashes (secrets/api-token-hmac.key). */
  readonly tokenHashKey: Buffer;
  /** Seals a webhook signing secret for the catalog (see platform/secrets.ts SecretSealer). */
  sealWebhookSecret(secret: string, server: string, url: string): string;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** A step in code after the SQL, in the same transaction. */
  readonly run?: (client: pg.ClientBase, ctx: MigrationContext) => Promise<void>;
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
  {
    version: 2,
    name: 'network security: firewall rules, virtual networks, vnet rules, private endpoints',
    sql: `
      create table firewall_rules (
        server_id int not null references servers(id) on delete cascade,
        name text not null,
        start_ip_address text not null,
        end_ip_address text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (server_id, name)
      );
      create table virtual_networks (
        name text primary key,
        address_prefixes text[] not null,
        listen_address text unique,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create table subnets (
        vnet_name text not null references virtual_networks(name) on delete cascade,
        name text not null,
        address_prefix text not null,
        service_endpoint boolean not null default false,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (vnet_name, name)
      );
      create table virtual_network_rules (
        server_id int not null references servers(id) on delete cascade,
        name text not null,
        virtual_network_subnet_id text not null,
        ignore_missing_vnet_service_endpoint boolean not null default false,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (server_id, name)
      );
      create table private_endpoint_connections (
        server_id int not null references servers(id) on delete cascade,
        endpoint_id text not null,
        kind text not null check (kind in ('azure-private-link', 'aws-vpc-endpoint')),
        status text not null check (status in ('Pending', 'Approved', 'Rejected', 'Disconnected')),
        description text not null default '',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        primary key (server_id, endpoint_id)
      );
      -- One payload per table and operation: identical notifications in one transaction are
      -- delivered once, so a bulk change (a server's rules cascading away) is one reload.
      create function notify_network_change() returns trigger language plpgsql as $$
      begin
        perform pg_notify('pgwarden_changes', json_build_object('table', tg_table_name, 'op', tg_op)::text);
        return null;
      end $$;
      create trigger firewall_rules_changed after insert or update or delete on firewall_rules
        for each row execute function notify_network_change();
      create trigger virtual_networks_changed after insert or update or delete on virtual_networks
        for each row execute function notify_network_change();
      create trigger subnets_changed after insert or update or delete on subnets
        for each row execute function notify_network_change();
      create trigger virtual_network_rules_changed after insert or update or delete on virtual_network_rules
        for each row execute function notify_network_change();
      create trigger private_endpoint_connections_changed after insert or update or delete on private_endpoint_connections
        for each row execute function notify_network_change();
    `,
  },
  {
    version: 3,
    name: 'identity: token-login administrator, principals, password switch',
    sql: `
      alter table servers add column password_auth text not null default 'Enabled'
        check (password_auth in ('Enabled', 'Disabled'));
      create table identity_admins (
        server_id int primary key references servers(id) on delete cascade,
        issuer text not null,
        audience text not null,
        login text not null,
        object_id text not null,
        principal_type text not null check (principal_type in ('user', 'group', 'servicePrincipal')),
        object_id_claim text not null default 'oid',
        ca_bundle text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      create table identity_principals (
        server_id int not null references servers(id) on delete cascade,
        role text not null,
        object_id text not null,
        principal_type text not null check (principal_type in ('user', 'group', 'servicePrincipal')),
        created_at timestamptz not null default now(),
        primary key (server_id, role),
        unique (server_id, principal_type, object_id)
      );
      create trigger identity_admins_changed after insert or update or delete on identity_admins
        for each row execute function notify_network_change();
      create trigger identity_principals_changed after insert or update or delete on identity_principals
        for each row execute function notify_network_change();
    `,
  },
  {
    version: 4,
    name: 'audit settings per server',
    sql: `
      create table audit_settings (
        server_id int primary key references servers(id) on delete cascade,
        classes text[] not null default '{ROLE,DDL}',
        log_parameters boolean not null default false,
        redact text[] not null default '{}',
        retention_days int not null default 90 check (retention_days between 1 and 3650),
        updated_at timestamptz not null default now()
      );
      create trigger audit_settings_changed after insert or update or delete on audit_settings
        for each row execute function notify_network_change();
    `,
  },
  {
    version: 5,
    name: 'threat protection: alert policies, alerts, deliveries, baselines, login statistics',
    sql: `
      create table security_alert_policies (
        server_id int primary key references servers(id) on delete cascade,
        policy jsonb not null,
        updated_at timestamptz not null default now()
      );
      create trigger security_alert_policies_changed after insert or update or delete on security_alert_policies
        for each row execute function notify_network_change();
      create table alerts (
        id uuid primary key,
        server_id int not null references servers(id) on delete cascade,
        type text not null,
        severity text not null check (severity in ('Low', 'Medium', 'High')),
        state text not null default 'Active' check (state in ('Active', 'Resolved', 'Dismissed')),
        incident_key text not null,
        title text not null,
        description text not null,
        tactic text not null,
        principal text,
        source_address text,
        location jsonb,
        first_seen timestamptz not null,
        last_seen timestamptz not null,
        count bigint not null default 1,
        evidence jsonb not null default '{}',
        recommended_action text not null,
        state_changed_by text,
        state_changed_at timestamptz
      );
      create unique index alerts_open_incident on alerts (server_id, type, severity, incident_key) where state = 'Active';
      create index alerts_by_server on alerts (server_id, last_seen desc);
      create table alert_deliveries (
        id bigserial primary key,
        alert_id uuid not null references alerts(id) on delete cascade,
        channel text not null,
        target text not null,
        outcome text not null,
        attempts int not null,
        error text,
        time timestamptz not null default now()
      );
      create index alert_deliveries_by_alert on alert_deliveries (alert_id);
      create table threat_baselines (
        server_id int not null references servers(id) on delete cascade,
        kind text not null,
        key text not null,
        first_seen timestamptz not null,
        last_seen timestamptz not null,
        primary key (server_id, kind, key)
      );
      create table login_stats (
        server_id int not null references servers(id) on delete cascade,
        bucket timestamptz not null,
        succeeded bigint not null default 0,
        failed bigint not null default 0,
        primary key (server_id, bucket)
      );
    `,
  },
  {
    version: 6,
    name: 'encryption at rest: the key-encryption key of each server, its encrypted volume',
    sql: `
      create table server_keys (
        server_id int primary key references servers(id) on delete cascade,
        type text not null default 'SystemManaged' check (type in ('SystemManaged', 'CustomerManaged')),
        kek_version int not null default 1,
        pkcs11 jsonb,
        status text not null default 'Valid' check (status in ('Valid', 'Unavailable')),
        reason text,
        last_validated_at timestamptz,
        updated_at timestamptz not null default now()
      );
      create table server_volumes (
        server_id int primary key references servers(id) on delete cascade,
        backend text not null check (backend in ('fscrypt', 'gocryptfs')),
        size_bytes bigint not null,
        wrapped_key jsonb not null,
        created_at timestamptz not null default now(),
        rewrapped_at timestamptz
      );
    `,
  },
  {
    version: 7,
    name: 'api token hashes keyed with the platform secret; webhook secrets sealed; baseline keys without NUL',
    sql: `
      -- Baseline keys were written with NUL separators, which neither jsonb nor text can hold:
      -- the few rows that did persist (principal names) get the escaping the repo now uses.
      update threat_baselines set key = replace(key, '%', '%25') where strpos(key, '%') > 0;
    `,
    // Every stored SHA-256 becomes HMAC(key, SHA-256), once: existing tokens keep working, and
    // from here on a row written without the key matches no token.
    run: async (client, ctx) => {
      const { rows } = await client.query<{ id: string; token_hash: Buffer }>('select id, token_hash from api_tokens for update');
      for (const r of rows) {
        await client.query('update api_tokens set token_hash = $2 where id = $1', [r.id, keyedTokenHash(ctx.tokenHashKey, r.token_hash)]);
      }
      // Webhook secrets were stored in clear inside each policy: seal every one.
      const policies = await client.query<{ server_id: number; name: string; policy: { webhooks?: { url: string; secret: string }[] } }>(
        'select p.server_id, s.name, p.policy from security_alert_policies p join servers s on s.id = p.server_id for update of p',
      );
      for (const r of policies.rows) {
        const hooks = r.policy.webhooks ?? [];
        if (!hooks.length) continue;
        const webhooks = hooks.map((w) => ({ ...w, secret: ctx.sealWebhookSecret(w.secret, r.name, w.url) }));
        await client.query('update security_alert_policies set policy = $2 where server_id = $1', [r.server_id, JSON.stringify({ ...r.policy, webhooks })]);
      }
    },
  },
  {
    version: 8,
    name: 'server parameters (configurations)',
    sql: `
      create table if not exists server_parameters (
        server_id int not null references servers(id) on delete cascade,
        name text not null,
        value text not null,
        updated_at timestamptz not null default now(),
        primary key (server_id, name)
      );
    `,
  },
  {
    version: 9,
    name: 'learned application shapes (SQL injection)',
    sql: `
      create table if not exists sql_learned_shapes (
        server_id int not null references servers(id) on delete cascade,
        role text not null,
        application text not null,
        fingerprint text not null,
        shape text not null,
        first_seen timestamptz not null default now(),
        last_seen timestamptz not null default now(),
        primary key (server_id, role, application, fingerprint)
      );
    `,
  },
  {
    version: 10,
    name: 'connection pooling per server',
    sql: `
      alter table servers add column pool_mode text not null default 'none'
        check (pool_mode in ('none', 'session', 'transaction'));
      alter table servers add column pool_size int not null default 20
        check (pool_size between 1 and 10000);
    `,
  },
  {
    version: 11,
    name: 'attached servers (PostgreSQL run by an HA engine elsewhere)',
    // The maintenance password is kept sealed (host/secrets.ts SecretSealer, under a key the
    // catalog does not hold): the check refuses a clear one written by mistake.
    sql: `
      alter table servers add column mode text not null default 'managed' check (mode in ('managed', 'attached'));
      alter table servers add column endpoints text[] not null default '{}';
      alter table servers add column tls_ca text;
      alter table servers add column maintenance_user text;
      alter table servers add column maintenance_password text check (maintenance_password like 'sealed:v1:%');
      alter table servers add constraint servers_attached_complete check (
        mode = 'managed' or (cardinality(endpoints) > 0 and tls_ca is not null
          and maintenance_user is not null and maintenance_password is not null));
    `,
  },
  {
    version: 12,
    name: 'gateways registry (each gateway process, its API and audit key)',
    // Written by every `pgwarden gateway` at start and every 10 s; the platform reads it to
    // verify and search the audit streams of gateways on other hosts. Only the public key is here.
    sql: `
      create table gateways (
        name text primary key,
        api_url text not null,
        audit_public_key text not null check (audit_public_key like '-----BEGIN PUBLIC KEY-----%'),
        host_id text not null,
        started_at timestamptz not null,
        last_seen timestamptz not null
      );
    `,
  },
];

export async function migrate(client: pg.ClientBase, ctx: MigrationContext): Promise<void> {
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
        await m.run?.(client, ctx);
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
