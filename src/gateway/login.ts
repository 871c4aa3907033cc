// Step 8 (SPEC.md §3): authentication at the gateway. A token for the server's principals
// (token-login.ts), SCRAM for every other role (authenticate.ts); then the gateway's own login
// to the server (backend.ts) and the session's cancel key. `greet` then tells the client, once
// the login is on disk. Refusals come back as verdicts for the runner to report.
// A pooled server (session or transaction mode): the proved keys go to the pool, and the client
// gets a pooled connection (session mode) or the promise of one per transaction; either way it is
// greeted with the parameters of a pool connection.
import type { Duplex } from 'node:stream';
import { authenticationOk, authenticationSASLFinal, backendKeyData, parameterStatus, readyForQuery } from '../pgwire/index.js';
import { clientErrors, passwordFailed } from '../pgwire/client-errors.js';
import { authenticatePassword } from './authenticate.js';
import { authenticateToken } from './token-login.js';
import { connectBackend, BackendRefused, type BackendSession } from './backend.js';
import { LONG_CANCEL_KEY_LENGTH, type IssuedKey } from './cancel-keys.js';
import { verifierId, type PoolClient } from './pool/pool.js';
import { PoolWaitError, type ServerConnection } from './pool/types.js';
import { runQuery } from './pool/server-connection.js';
import { APPLICATION_NAME, setApplicationName } from './pool/client-messages.js';
import { refusal, type Verdict } from './checks/verdict.js';
import type { Admission } from './checks/admission.js';
import type { TlsState } from './handshake/transport.js';
import type { Wire } from './wire.js';
import type { Facts } from './report.js';
import type { GatewayContext } from './context.js';
import type { AuthMethod } from '../events/types.js';

export interface LoginStart {
  readonly socket: Duplex;
  readonly wire: Wire;
  readonly tls: TlsState | null;
  readonly protocolMinor: number;
}

/** What the session relays to: its own backend, a pooled one for the whole session, or one
 * lent per transaction (`current` is set by the session once its relay runs). */
export type ServerSide =
  | { readonly kind: 'direct'; readonly backend: BackendSession }
  | { readonly kind: 'session'; readonly lender: PoolClient; readonly conn: ServerConnection }
  | { readonly kind: 'transaction'; readonly lender: PoolClient; readonly holder: { current: () => ServerConnection | null } };

export interface Login {
  readonly method: AuthMethod;
  readonly server: ServerSide;
  /** ParameterStatus and notice frames the client is greeted with, then ReadyForQuery. */
  readonly greeting: Buffer[];
  readonly readyForQuery: Buffer;
  /** The gateway's cancel key for the session, to be released when it ends. */
  readonly key: IssuedKey;
  /** Messages before AuthenticationOk (SCRAM's server-final). */
  readonly preamble: Buffer[];
}

/** No session will own what the login holds (the greeting failed): give it all back. */
export function abandonLogin(login: Login): void {
  const s = login.server;
  if (s.kind === 'direct') s.backend.socket.destroy();
  else {
    if (s.kind === 'session') s.lender.release(s.conn, 'broken');
    s.lender.end();
  }
  login.key.release();
}

interface Proof {
  readonly method: AuthMethod;
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
  readonly preamble: Buffer[];
  /** What the keys were proved against: a different value means the password changed. */
  readonly verifier: string;
}

/** `facts.objectId` is set once a token names its identity, so later refusals carry it. A throw
 * (protocol error, closed socket) leaves the authentication timer to close a socket the client
 * keeps open. */
export async function authenticate(g: GatewayContext, start: LoginStart, a: Admission, facts: Facts): Promise<Verdict<{ readonly login: Login }>> {
  const timer = setTimeout(() => start.socket.destroy(), g.limits.authTimeoutMs);
  const proof = await prove(g, start, a, facts);
  if (!proof.ok) {
    clearTimeout(timer);
    return proof;
  }
  const { server } = a;
  if (server.poolMode !== 'none') {
    clearTimeout(timer); // a wait for a pooled connection has its own timeout
    return pooledLogin(g, start, a, proof);
  }
  let backend: BackendSession;
  try {
    backend = await connectBackend({ socketDir: g.socketDir(server.id), params: a.forward, clientKey: proof.clientKey, serverKey: proof.serverKey });
  } catch (err) {
    clearTimeout(timer);
    proof.clientKey.fill(0);
    return serverRefused(g, a, proof, err);
  }
  clearTimeout(timer);
  proof.clientKey.fill(0);
  // The real backend pid, with a secret of the gateway's own (longer from protocol 3.2).
  const key = g.cancelKeys.issue(
    { socketDir: g.socketDir(server.id), processId: backend.processId, secretKey: backend.secretKey },
    start.protocolMinor >= 2 ? LONG_CANCEL_KEY_LENGTH : 4,
  );
  return {
    ok: true,
    login: {
      method: proof.method,
      server: { kind: 'direct', backend },
      greeting: backend.greeting,
      readyForQuery: backend.readyForQuery,
      key,
      preamble: proof.preamble,
    },
  };
}

/** The server's own refusal (database does not exist, password changed in SQL, ...), or the
 * pool's (no connection came in time). Anything else is thrown on. */
function serverRefused(g: GatewayContext, a: Admission, proof: Proof, err: unknown): Verdict<{ readonly login: Login }> {
  if (err instanceof PoolWaitError) return refusal({ sqlstate: err.sqlstate, message: err.message }, `pool: ${err.message}`);
  if (!(err instanceof BackendRefused)) throw err;
  if (err.sqlstate === '28P01') g.verifiers.loginFailed(a.server.id, a.user);
  return refusal({ sqlstate: err.sqlstate, message: err.message }, `server refused: ${err.message}`, {
    event: 'auth.failed',
    method: proof.method,
    frame: err.frame,
  });
}

/** Session mode: a connection of the pool for the whole session (idle, new, or waited for).
 * Transaction mode: the pool has a connection (one is opened now when it has none, which also
 * lets the server check the password) whose parameters greet the client; the cancel key's pid
 * is the gateway's own, since the backend changes with each transaction. */
async function pooledLogin(g: GatewayContext, start: LoginStart, a: Admission, proof: Proof): Promise<Verdict<{ readonly login: Login }>> {
  const { server } = a;
  g.pools.proved(server.id, a.user, { clientKey: proof.clientKey, serverKey: proof.serverKey, verifier: proof.verifier, poll: proof.method !== 'token' });
  proof.clientKey.fill(0); // the pool keeps its own copy
  const lender = g.pools.client(server, a.user, a.database, a.forward);
  const keyLength = start.protocolMinor >= 2 ? LONG_CANCEL_KEY_LENGTH : 4;
  const socketDir = g.socketDir(server.id);
  let parameters: ReadonlyMap<string, string>;
  let side: ServerSide;
  let key: IssuedKey;
  try {
    if (server.poolMode === 'session') {
      const conn = await lender.acquire(start.socket);
      // The backend runs under the client's own application_name (pg_stat_activity, the server's
      // log, SHOW), as transaction mode does per lend.
      const app = a.forward.get(APPLICATION_NAME) ?? '';
      if (conn.parameters.get(APPLICATION_NAME) !== app && !(await runQuery(conn, [setApplicationName(app)]))) {
        lender.release(conn, 'broken');
        throw new PoolWaitError('08006', 'could not set up a server connection of the pool');
      }
      parameters = conn.parameters;
      side = { kind: 'session', lender, conn };
      key = g.cancelKeys.issue({ socketDir, processId: conn.processId, secretKey: conn.secretKey }, keyLength);
    } else {
      let fresh: ReadonlyMap<string, string> | null = null;
      if (!lender.warm) {
        const conn = await lender.acquire(start.socket);
        fresh = new Map(conn.parameters);
        lender.release(conn, 'idle');
      }
      parameters = lender.parameters ?? fresh ?? new Map();
      const holder = { current: (): ServerConnection | null => null };
      side = { kind: 'transaction', lender, holder };
      key = g.cancelKeys.issue(() => {
        const c = holder.current();
        return c ? { socketDir, processId: c.processId, secretKey: c.secretKey } : null;
      }, keyLength);
    }
  } catch (err) {
    lender.end();
    return serverRefused(g, a, proof, err);
  }
  return {
    ok: true,
    login: {
      method: proof.method,
      server: side,
      // The client's own application_name, not the one the pooled backend reports.
      greeting: [poolGreeting(parameters, a.forward.get(APPLICATION_NAME) ?? '')],
      readyForQuery: readyForQuery('I'),
      key,
      preamble: proof.preamble,
    },
  };
}

/** Pool greetings by their parameters and application_name (one server's pools greet every
 * client alike): built once, not ~15 ParameterStatus messages per login. Bounded; emptied when full. */
const greetings = new Map<string, Buffer>();
const GREETINGS_MAX = 256;

/** The ParameterStatus messages of a pooled login, one buffer: `parameters` in their order with
 * application_name set to the client's (in its place, or last). */
export function poolGreeting(parameters: ReadonlyMap<string, string>, applicationName: string): Buffer {
  // Names and values are C strings (no NUL), so NUL separates them unambiguously.
  let key = applicationName;
  for (const [name, value] of parameters) key += `\0${name}\0${value}`;
  let greeting = greetings.get(key);
  if (!greeting) {
    greeting = Buffer.concat([...new Map(parameters).set(APPLICATION_NAME, applicationName)].map(([name, value]) => parameterStatus(name, value)));
    if (greetings.size >= GREETINGS_MAX) greetings.clear();
    greetings.set(key, greeting);
  }
  return greeting;
}

/** The client proves who it is: a token for a principal's role, else SCRAM. */
async function prove(g: GatewayContext, start: LoginStart, a: Admission, facts: Facts): Promise<Verdict<Proof>> {
  const { server, user } = a;
  const identity = g.snapshot().identity.get(server.name);
  const principal = identity?.principals.get(user) ?? null;
  if (principal) {
    const result = start.tls
      ? await authenticateToken({ wire: start.wire, admin: identity!.admin, principal, verify: g.verifyToken })
      : { ok: false as const, reason: 'token over a plaintext connection' };
    if (!result.ok) return refusal(clientErrors.badToken, result.reason, { event: 'auth.failed', method: 'token' });
    facts.objectId = result.objectId;
    const keys = g.principalKeys(server.id, user);
    return {
      ok: true,
      method: 'token',
      clientKey: Buffer.from(keys.clientKey),
      serverKey: keys.serverKey,
      preamble: [],
      verifier: `principal:${keys.storedKey.toString('base64')}:${keys.serverKey.toString('base64')}`,
    };
  }
  if (server.passwordAuth === 'Disabled') return refusal(clientErrors.passwordAuthDisabled, 'password-auth-disabled');
  let proved = '';
  const auth = await authenticatePassword({
    wire: start.wire,
    user,
    channelBinding: start.tls?.channelBinding ?? null,
    lookup: async () => {
      const l = await g.verifiers.get(server.id, user);
      if (l.kind === 'scram') proved = verifierId(l.verifier);
      return l;
    },
    mockSecret: g.mockSecret,
    serverId: server.id,
  });
  if (!auth.ok) {
    g.verifiers.loginFailed(server.id, user);
    return refusal(passwordFailed(user), auth.reason, { event: 'auth.failed' });
  }
  return {
    ok: true,
    method: auth.mechanism === 'SCRAM-SHA-256-PLUS' ? 'scram-sha-256-plus' : 'scram-sha-256',
    clientKey: auth.clientKey,
    serverKey: auth.serverKey,
    preamble: [authenticationSASLFinal(auth.serverFinal)],
    verifier: proved,
  };
}

/** Strict durability: the login is on disk before the client hears it succeeded. */
export async function greet(g: GatewayContext, socket: Duplex, login: Login): Promise<void> {
  await g.audit.durable();
  socket.write(
    Buffer.concat([...login.preamble, authenticationOk(), ...login.greeting, backendKeyData(login.key.processId, login.key.secretKey), login.readyForQuery]),
  );
}
