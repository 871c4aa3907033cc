// Server connection pools: one per (server, role, database, forwarded startup parameters). The
// decisions are PoolCore's (pool-core.ts); this adapter opens connections with the SCRAM keys a
// client proved, resets returned ones, closes idle ones after a while, refuses clients that wait
// too long, and flushes a role's connections when its password changes.
//
// Keys: the pool of a (server, role) keeps the keys of the last client that proved them, with the
// verifier they were proved against. A client that proves a different verifier (the password
// changed) closes the role's idle connections, marks its lent ones to be closed on return, and
// replaces the keys. The verifiers are also polled, so a password changed while no client logs
// in still flushes the pools.
import type { CatalogSnapshot } from '../../catalog/snapshot.js';
import type { ServerRecord } from '../../catalog/servers-repo.js';
import type { ScramVerifier } from '../../auth/scram/index.js';
import { connectBackend, GATEWAY_SESSION_PARAM, type BackendSession } from '../backend.js';
import type { VerifierLookup } from '../verifier-cache.js';
import { POOL_WAIT_SQLSTATE, type ClientGone, type PoolsOptions, type ProvedKeys } from './pool-options.js';
import { PoolCore, type Grant, type Waiter } from './pool-core.js';
import { PooledConnection } from './server-connection.js';
import { APPLICATION_NAME } from './client-messages.js';
import { PoolWaitError, type Lender, type PoolStats, type PoolStatsSource, type ReturnState, type ServerConnection } from './types.js';

export { POOL_WAIT_SQLSTATE, type ClientGone, type PoolLimits, type PoolsOptions, type ProvedKeys } from './pool-options.js';

interface RoleKeys extends ProvedKeys {
  readonly serverId: number;
  readonly role: string;
  readonly generation: number;
}

class Pool {
  readonly core = new PoolCore<PooledConnection>();
  /** Every connection of the pool that is open (idle, lent or being reset). */
  readonly conns = new Set<PooledConnection>();
  readonly waiters = new Map<Waiter<PooledConnection>, (err: Error) => void>();
  clients = 0;
  closed = false;
  /** The parameters of the last connection opened or reset: what a transaction-mode client is told. */
  parameters: Map<string, string> | null = null;

  constructor(
    readonly key: string,
    readonly serverId: number,
    readonly serverName: string,
    readonly user: string,
    readonly database: string,
    readonly params: ReadonlyMap<string, string>,
  ) {}
}

export function verifierId(v: ScramVerifier): string {
  return `${v.iterations}:${v.salt.toString('base64')}:${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

export class ServerPools implements PoolStatsSource {
  private readonly pools = new Map<string, Pool>();
  private readonly keys = new Map<string, RoleKeys>();
  private generation = 1;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly pollTimer: NodeJS.Timeout;
  private polling = false;
  private stopped = false;
  private readonly connect: typeof connectBackend;
  private readonly now: () => number;

  constructor(private readonly o: PoolsOptions) {
    this.connect = o.connect ?? connectBackend;
    this.now = o.now ?? Date.now;
    this.sweepTimer = setInterval(() => this.sweep(), 1_000);
    this.sweepTimer.unref();
    this.pollTimer = setInterval(() => void this.poll(), o.limits.poolVerifierPollMs);
    this.pollTimer.unref();
  }

  /** A client proved these keys for (server, role): a different verifier flushes the role's pools. */
  proved(serverId: number, role: string, keys: ProvedKeys): void {
    const k = roleKey(serverId, role);
    const had = this.keys.get(k);
    if (had && had.verifier === keys.verifier) {
      // Same password: the newest proof's keys are the same keys; nothing to change.
      return;
    }
    if (had) this.flushRole(serverId, role, 'the role proved a different password');
    this.keys.set(k, {
      clientKey: Buffer.from(keys.clientKey),
      serverKey: Buffer.from(keys.serverKey),
      verifier: keys.verifier,
      poll: keys.poll,
      serverId,
      role,
      generation: this.generation++,
    });
  }

  /** A client session's access to its pool; `end()` it when the session ends. */
  client(server: ServerRecord, user: string, database: string, forward: ReadonlyMap<string, string>): PoolClient {
    // application_name does not tell pools apart (as PgBouncer): clients of one role and database
    // share backends whatever they call themselves; each is greeted with its own name (login.ts),
    // the audit names the client's, and a backend is set to the name of the client it serves.
    const params = new Map(
      [...forward].filter(([k]) => k !== GATEWAY_SESSION_PARAM && k !== APPLICATION_NAME).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
    const key = JSON.stringify([server.id, user, database, [...params]]);
    let pool = this.pools.get(key);
    if (!pool || pool.closed) {
      pool = new Pool(key, server.id, server.name, user, database, params);
      this.pools.set(key, pool);
    }
    pool.clients++;
    return new PoolClient(this, pool);
  }

  poolStats(server: string): PoolStats[] {
    const record = this.o.snapshot().servers.get(server);
    const out: PoolStats[] = [];
    for (const p of this.pools.values()) {
      if (p.serverName !== server) continue;
      const c = p.core;
      out.push({
        server,
        mode: record?.poolMode ?? 'none',
        user: p.user,
        database: p.database,
        clients: p.clients,
        waiting: c.waiting,
        active: c.active,
        idle: c.idle,
        opening: c.opening,
        poolSize: record?.poolSize ?? 0,
        waits: c.waits,
        waitMs: c.waitMs,
        opened: c.opened,
        reused: c.reused,
      });
    }
    return out;
  }

  /** The server was stopped or deleted, or its pool mode turned off: idle connections close,
   * waiting clients are refused, lent ones close when they come back. */
  closeServer(name: string): void {
    for (const p of [...this.pools.values()]) if (p.serverName === name) this.closePool(p, 'the server is no longer pooled');
  }

  /** Follows the catalog: pools of servers gone, not Ready, or no longer pooled are closed. */
  sync(snapshot: CatalogSnapshot): void {
    for (const p of [...this.pools.values()]) {
      const s = snapshot.servers.get(p.serverName);
      if (!s || s.id !== p.serverId || s.poolMode === 'none' || s.state !== 'Ready') this.closePool(p, 'the server is no longer pooled');
    }
  }

  /** Gateway stop: every pool closed, every connection (lent ones included) ended. */
  close(): void {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.pollTimer);
    for (const p of [...this.pools.values()]) {
      this.closePool(p, 'the gateway is stopping');
      for (const c of p.conns) c.close();
    }
    for (const k of this.keys.values()) k.clientKey.fill(0);
    this.keys.clear();
  }

  // --- for PoolClient ---------------------------------------------------------------------

  /** The parameters a client of the pool is greeted with, or null before any connection. */
  parameters(pool: Pool): ReadonlyMap<string, string> | null {
    return pool.parameters;
  }

  hasConnections(pool: Pool): boolean {
    return pool.core.total > 0 && pool.parameters !== null;
  }

  /** `gone`: the client's socket; a client that leaves while it waits leaves the queue. */
  acquire(pool: Pool, gone?: ClientGone): Promise<ServerConnection> {
    const size = this.sizeOf(pool);
    if (size === null) return Promise.reject(closedError());
    for (const c of pool.core.trimIdle(size)) this.drop(pool, c);
    const g = pool.core.request(size);
    if (g) return this.use(pool, g);
    return new Promise<ServerConnection>((resolve, reject) => {
      const left = () => {
        if (!pool.core.cancel(w)) return;
        pool.waiters.delete(w);
        reject(new PoolWaitError('08006', 'the client left while it waited for a server connection'));
      };
      const w: Waiter<PooledConnection> = {
        since: this.now(),
        grant: (grant) => {
          gone?.off('close', left);
          pool.waiters.delete(w);
          this.use(pool, grant).then(resolve, reject);
        },
      };
      pool.waiters.set(w, (err) => {
        gone?.off('close', left);
        reject(err);
      });
      pool.core.enqueue(w);
      gone?.once('close', left);
    });
  }

  /** A warm connection at once, when one is idle and nobody waits; else null (then `acquire`). */
  tryAcquire(pool: Pool): ServerConnection | null {
    const size = this.sizeOf(pool);
    if (size === null) return null;
    for (const c of pool.core.trimIdle(size)) this.drop(pool, c);
    const c = pool.core.requestIdle();
    // One closed a moment ago: acquire() decides.
    return c !== null && this.lendIdle(pool, c) ? c : null;
  }

  /** An idle connection taken from the pool: lent (watch ended), or, closed by the server a moment
   * ago (its close event not handled yet), dropped. */
  private lendIdle(pool: Pool, c: PooledConnection): boolean {
    if (c.usable) {
      c.unwatch();
      return true;
    }
    pool.core.release(false, this.sizeOf(pool) ?? 0, this.now());
    this.drop(pool, c);
    return false;
  }

  release(pool: Pool, conn: ServerConnection, state: ReturnState): void {
    const c = conn as PooledConnection;
    if (!pool.conns.has(c)) return; // already closed (gateway stop)
    const size = this.sizeOf(pool) ?? 0;
    const keys = this.keys.get(roleKey(pool.serverId, pool.user));
    const reusable = state === 'idle' && !pool.closed && c.usable && keys !== undefined && keys.generation === c.generation;
    if (pool.core.release(reusable, size, this.now()) === 'close') return this.drop(pool, c);
    const settled = (ok: boolean) => {
      const now = this.now();
      if (!ok || pool.closed || this.keys.get(roleKey(pool.serverId, pool.user))?.generation !== c.generation) {
        pool.core.openFailed(this.sizeOf(pool) ?? 0, now);
        return this.drop(pool, c);
      }
      pool.parameters = c.parameters; // read at a login (and copied there), not changed through this
      const to = pool.core.returned(c, this.sizeOf(pool) ?? 0, now);
      if (to === 'close') this.drop(pool, c);
      else if (to === 'idle') c.watchIdle(() => this.idleGone(pool, c));
    };
    // Session mode resets a connection between clients (PgBouncer's server_reset_query).
    // Transaction mode gives it back after every transaction and does not (as PgBouncer): a reset
    // there would cost a round trip per transaction and drop the statements prepared on it.
    if (this.o.snapshot().servers.get(pool.serverName)?.poolMode === 'transaction') settled(true);
    else void c.reset().then(settled);
  }

  clientEnded(pool: Pool): void {
    pool.clients--;
    this.forgetIfEmpty(pool);
  }

  // --- inside -----------------------------------------------------------------------------

  private async use(pool: Pool, g: Grant<PooledConnection>): Promise<ServerConnection> {
    if (g.kind === 'conn') {
      if (this.lendIdle(pool, g.conn)) return g.conn;
      return this.acquire(pool); // it was closed: try again
    }
    const keys = this.keys.get(roleKey(pool.serverId, pool.user));
    const server = this.o.snapshot().servers.get(pool.serverName);
    let backend: BackendSession;
    try {
      if (!server || pool.closed) throw closedError();
      // The role's keys were dropped (its password changed, or it can no longer log in): only a
      // client that proves the new password brings them back.
      if (!keys) throw new PoolWaitError('57P01', "terminating connection because the role's password changed or it can no longer log in");
      backend = await this.connect({ socketDir: this.o.socketDir(pool.serverId), params: pool.params, clientKey: keys.clientKey, serverKey: keys.serverKey });
    } catch (err) {
      pool.core.openFailed(this.sizeOf(pool) ?? 0, this.now());
      throw err;
    }
    const c = new PooledConnection(backend, keys.generation);
    pool.conns.add(c);
    pool.core.openSucceeded();
    pool.parameters ??= new Map(c.parameters);
    if (pool.closed) {
      pool.core.release(false, 0, this.now());
      this.drop(pool, c);
      throw closedError();
    }
    return c;
  }

  private drop(pool: Pool, c: PooledConnection): void {
    pool.conns.delete(c);
    c.close();
    this.forgetIfEmpty(pool);
  }

  private idleGone(pool: Pool, c: PooledConnection): void {
    pool.core.removeIdle(c, this.sizeOf(pool) ?? 0, this.now());
    this.drop(pool, c);
  }

  /** The pool's size now, or null when the server is no longer pooled. */
  private sizeOf(pool: Pool): number | null {
    if (pool.closed || this.stopped) return null;
    const s = this.o.snapshot().servers.get(pool.serverName);
    if (!s || s.id !== pool.serverId || s.poolMode === 'none') return null;
    return this.o.sizeShare ? this.o.sizeShare(s.poolSize) : s.poolSize;
  }

  private closePool(pool: Pool, why: string): void {
    if (pool.closed) return;
    pool.closed = true;
    if (this.pools.get(pool.key) === pool) this.pools.delete(pool.key);
    for (const c of pool.core.drainIdle(0, this.now())) this.drop(pool, c);
    for (const w of pool.core.drainWaiters()) {
      pool.waiters.get(w)?.(new PoolWaitError('57P01', `terminating connection because ${why}`));
      pool.waiters.delete(w);
    }
  }

  private forgetIfEmpty(pool: Pool): void {
    if (pool.clients > 0 || pool.core.total > 0 || pool.core.waiting > 0) return;
    if (this.pools.get(pool.key) === pool) this.pools.delete(pool.key);
  }

  /** Every role's pools: idle ones closed, lent ones closed on return (a new generation). */
  private flushRole(serverId: number, role: string, why: string): void {
    this.o.log.info({ serverId, role, why }, 'pooled server connections of the role closed');
    const k = roleKey(serverId, role);
    const had = this.keys.get(k);
    if (had) had.clientKey.fill(0);
    this.keys.delete(k);
    for (const p of this.pools.values()) {
      if (p.serverId !== serverId || p.user !== role) continue;
      p.parameters = null;
      for (const c of p.core.drainIdle(this.sizeOf(p) ?? 0, this.now())) this.drop(p, c);
    }
  }

  /** Once a second: pools of servers no longer pooled closed, idle connections past the idle
   * timeout closed, clients past the wait timeout refused. (Public for tests.) */
  sweep(): void {
    const now = this.now();
    this.sync(this.o.snapshot());
    for (const p of [...this.pools.values()]) {
      for (const c of p.core.expireIdle(now, this.o.limits.poolIdleTimeoutMs)) this.drop(p, c);
      for (const w of p.core.expireWaiters(now, this.o.limits.poolWaitTimeoutMs)) {
        const reject = p.waiters.get(w);
        p.waiters.delete(w);
        reject?.(
          new PoolWaitError(
            POOL_WAIT_SQLSTATE,
            `no server connection became free in ${Math.round(this.o.limits.poolWaitTimeoutMs / 1000)} s (pool size ${this.sizeOf(p) ?? 0} for role "${p.user}"): try again later`,
          ),
        );
      }
      this.forgetIfEmpty(p);
    }
  }

  /** Re-reads the verifier of each role with a pool; a changed or unusable one flushes it.
   * (Public for tests.) */
  async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const roles = new Set<string>();
      for (const p of this.pools.values()) roles.add(roleKey(p.serverId, p.user));
      for (const k of roles) {
        const keys = this.keys.get(k);
        if (!keys?.poll) continue;
        let lookup: VerifierLookup;
        try {
          lookup = await this.o.refreshVerifier(keys.serverId, keys.role);
        } catch (err) {
          this.o.log.warn({ err, serverId: keys.serverId, role: keys.role }, 'pool: the role verifier could not be read');
          continue;
        }
        if (this.keys.get(k) !== keys) continue; // replaced meanwhile
        if (lookup.kind !== 'scram') this.flushRole(keys.serverId, keys.role, `the role can no longer log in (${lookup.kind})`);
        else if (verifierId(lookup.verifier) !== keys.verifier) this.flushRole(keys.serverId, keys.role, 'the role password changed');
      }
    } finally {
      this.polling = false;
    }
  }
}

/** A client session's handle on its pool (the Lender of the contract). */
export class PoolClient implements Lender {
  private ended = false;

  constructor(
    private readonly pools: ServerPools,
    private readonly pool: Pool,
  ) {}

  get parameters(): ReadonlyMap<string, string> | null {
    return this.pools.parameters(this.pool);
  }

  /** The pool has a connection (idle, lent or opening) and knows the parameters to greet with. */
  get warm(): boolean {
    return this.pools.hasConnections(this.pool);
  }

  acquire(gone?: ClientGone): Promise<ServerConnection> {
    return this.pools.acquire(this.pool, gone);
  }

  tryAcquire(): ServerConnection | null {
    return this.pools.tryAcquire(this.pool);
  }

  release(conn: ServerConnection, state: ReturnState): void {
    this.pools.release(this.pool, conn, state);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pools.clientEnded(this.pool);
  }
}

function roleKey(serverId: number, role: string): string {
  return `${serverId}\0${role}`;
}

function closedError(): PoolWaitError {
  return new PoolWaitError('57P01', 'terminating connection because the server is no longer pooled');
}
