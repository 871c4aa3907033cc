// Connections to a catalog that may be a cluster of several hosts: the host that takes the
// session `target_session_attrs` asks for (libpq's rule, catalog-url.ts), remembered until a
// connection to it fails. The pool's clients (CatalogHosts.clientClass) and the change feed's
// LISTEN connection (CatalogHosts.connect) both go through here, so after a failover neither
// keeps reaching the old primary, and neither is handed a read-only standby.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import {
  acceptsSession,
  firstPassAccepts,
  hostLabel,
  needsStateCheck,
  tryOrder,
  type CatalogHost,
  type CatalogUrl,
  type SessionState,
  type TargetSessionAttrs,
} from './catalog-url.js';

/** A host that does not answer within this long is skipped (libpq's connect_timeout, per host). */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface CatalogSpec {
  readonly hosts: readonly CatalogHost[];
  readonly targetSessionAttrs: TargetSessionAttrs;
  /** Everything but host and port: user, password, database, TLS, options. */
  readonly base: pg.ClientConfig;
}

/** TLS for the catalog as libpq's sslmode means it (require with a root certificate checks it). */
function sslFor(url: CatalogUrl): pg.ClientConfig['ssl'] {
  const mode = url.sslMode;
  if (mode === undefined || mode === 'disable') return false;
  const files = {
    ...(url.sslCert ? { cert: readFileSync(url.sslCert, 'utf8') } : {}),
    ...(url.sslKey ? { key: readFileSync(url.sslKey, 'utf8') } : {}),
  };
  const ca = url.sslRootCert ? { ca: readFileSync(url.sslRootCert, 'utf8') } : {};
  if (mode === 'verify-full') return { ...files, ...ca, rejectUnauthorized: true };
  if (mode === 'verify-ca' || (mode === 'require' && url.sslRootCert)) {
    if (!url.sslRootCert) throw new Error('invalid catalog URL: sslmode=verify-ca needs sslrootcert (the CA that signed the catalog hosts)');
    return { ...files, ...ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  }
  return { ...files, rejectUnauthorized: false }; // require: encrypted, not verified (libpq's meaning)
}

/** The spec of a parsed catalog URL (reads the TLS files it names). */
export function specFromUrl(url: CatalogUrl): CatalogSpec {
  const timeout = url.connectTimeoutSeconds ? url.connectTimeoutSeconds * 1000 : DEFAULT_CONNECT_TIMEOUT_MS;
  return {
    hosts: url.hosts,
    targetSessionAttrs: url.targetSessionAttrs,
    base: {
      ...(url.user !== undefined ? { user: url.user } : {}),
      ...(url.password !== undefined ? { password: url.password } : {}),
      ...(url.database !== undefined ? { database: url.database } : {}),
      ...(url.options !== undefined ? { options: url.options } : {}),
      ...(url.applicationName !== undefined ? { application_name: url.applicationName } : {}),
      ssl: sslFor(url),
      connectionTimeoutMillis: timeout,
      keepAlive: true,
    },
  };
}

/** One host given as a node-postgres config (the embedded catalog: its Unix socket). */
export function specFromConfig(config: pg.ClientConfig & { host: string }): CatalogSpec {
  const { host, port, ...base } = config;
  return { hosts: [{ host, port: port ?? 5432 }], targetSessionAttrs: 'any', base };
}

async function stateOf(client: pg.ClientBase): Promise<SessionState> {
  const r = await client.query<{ r: boolean; ro: string }>("select pg_is_in_recovery() as r, current_setting('transaction_read_only') as ro");
  return { inRecovery: r.rows[0]!.r, readOnly: r.rows[0]!.ro === 'on' };
}

function describe(state: SessionState): string {
  return state.inRecovery ? 'in recovery (a standby)' : state.readOnly ? 'read-only' : 'read-write';
}

export class NoCatalogHostError extends Error {
  constructor(attrs: TargetSessionAttrs, reasons: readonly string[]) {
    super(`no catalog host accepted a ${attrs === 'any' ? '' : `${attrs} `}session: ${reasons.join('; ')}`);
    this.name = 'NoCatalogHostError';
  }
}

export class CatalogHosts {
  private last: CatalogHost | null = null;
  private picking: Promise<CatalogHost> | null = null;

  constructor(readonly spec: CatalogSpec) {}

  /** The host connections go to now (null until one was found, and after it failed). */
  get current(): CatalogHost | null {
    return this.last;
  }

  /** A connection to `host` failed or was lost: the next connection looks at every host again. */
  forget(host?: CatalogHost): void {
    if (!host || (this.last && this.last.host === host.host && this.last.port === host.port)) this.last = null;
  }

  configFor(host: CatalogHost, extra: pg.ClientConfig = {}): pg.ClientConfig {
    return { ...this.spec.base, ...extra, host: host.host, port: host.port };
  }

  /**
   * A connected client on a host that takes the session asked for, trying the hosts in order
   * (the remembered one first). `prepare` sees each client before it connects (listeners).
   */
  async connect(extra: pg.ClientConfig = {}, prepare?: (client: pg.Client) => void): Promise<pg.Client> {
    const attrs = this.spec.targetSessionAttrs;
    const reasons: string[] = [];
    let fallback: CatalogHost | null = null; // prefer-standby: the first host that answered
    for (const host of tryOrder(this.spec.hosts, this.last)) {
      const client = new pg.Client(this.configFor(host, extra));
      client.on('error', () => undefined); // a lost connection also ends it: its owner sees 'end'
      prepare?.(client);
      try {
        await client.connect();
        if (needsStateCheck(attrs)) {
          const state = await stateOf(client);
          if (!firstPassAccepts(attrs, state)) {
            reasons.push(`${hostLabel(host)}: ${describe(state)}`);
            fallback ??= host;
            await client.end().catch(() => undefined);
            continue;
          }
        }
        this.last = host;
        return client;
      } catch (err) {
        reasons.push(`${hostLabel(host)}: ${(err as Error).message}`);
        this.forget(host);
        await client.end().catch(() => undefined);
      }
    }
    if (attrs === 'prefer-standby' && fallback) {
      const client = new pg.Client(this.configFor(fallback, extra));
      client.on('error', () => undefined);
      prepare?.(client);
      await client.connect();
      this.last = fallback;
      return client;
    }
    throw new NoCatalogHostError(attrs, reasons);
  }

  /** The host a new pool connection goes to: the remembered one, else one found by asking. */
  private pick(): Promise<CatalogHost> {
    if (this.last) return Promise.resolve(this.last);
    // A pool filling up after a failover asks once, not once per connection.
    this.picking ??= (async () => {
      try {
        const probe = await this.connect({ application_name: 'pgwarden-catalog-probe' });
        const host = { host: probe.host, port: probe.port };
        await probe.end().catch(() => undefined);
        return host;
      } finally {
        this.picking = null;
      }
    })();
    return this.picking;
  }

  /**
   * A pg.Client class for pg.Pool: each new connection goes to the chosen host and, unless any
   * host will do, asks that host again after logging in, so the pool never hands out a
   * connection to a standby (a failover between the choice and the login fails that connection).
   */
  clientClass(): typeof pg.Client {
    const hosts = this;
    class CatalogClient extends pg.Client {
      override connect(): Promise<pg.Client>;
      override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
      override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | undefined {
        const done = this.connectToChosen();
        if (!callback) return done;
        done.then(
          (c) => (callback as (err: null, c: pg.Client) => void)(null, c),
          (err: Error) => (callback as (err: Error) => void)(err),
        );
        return undefined;
      }

      private async connectToChosen(): Promise<pg.Client> {
        const host = await hosts.pick();
        this.host = host.host;
        this.port = host.port;
        const params = (this as unknown as { connectionParameters: { host: string; port: number } }).connectionParameters;
        params.host = host.host;
        params.port = host.port;
        // A lost connection (the host died or was demoted) sends the next one looking again;
        // an end the pool asked for (idle timeout) does not.
        const lost = () => {
          if (!(this as unknown as { _ending: boolean })._ending) hosts.forget(host);
        };
        this.on('error', lost);
        this.on('end', lost);
        try {
          await super.connect();
          const attrs = hosts.spec.targetSessionAttrs;
          if (needsStateCheck(attrs)) {
            const state = await stateOf(this);
            if (!acceptsSession(attrs, state)) {
              hosts.forget(host);
              throw new NoCatalogHostError(attrs, [`${hostLabel(host)}: ${describe(state)}`]);
            }
          }
        } catch (err) {
          hosts.forget(host);
          await this.end().catch(() => undefined);
          throw err;
        }
        return this;
      }
    }
    return CatalogClient;
  }
}
