// Step 8 (SPEC.md §3): authentication at the gateway. A token for the server's principals
// (token-login.ts), SCRAM for every other role (authenticate.ts); then the gateway's own login
// to the server (backend.ts) and the session's cancel key. `greet` then tells the client, once
// the login is on disk. Refusals come back as verdicts for the runner to report.
import type { Duplex } from 'node:stream';
import { authenticationOk, authenticationSASLFinal, backendKeyData } from '../pgwire/index.js';
import { clientErrors, passwordFailed } from '../pgwire/client-errors.js';
import { authenticatePassword } from './authenticate.js';
import { authenticateToken } from './token-login.js';
import { connectBackend, BackendRefused, type BackendSession } from './backend.js';
import { LONG_CANCEL_KEY_LENGTH, type IssuedKey } from './cancel-keys.js';
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

export interface Login {
  readonly method: AuthMethod;
  readonly backend: BackendSession;
  /** The gateway's cancel key for the session, to be released when it ends. */
  readonly key: IssuedKey;
  /** Messages before AuthenticationOk (SCRAM's server-final). */
  readonly preamble: Buffer[];
}

interface Proof {
  readonly method: AuthMethod;
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
  readonly preamble: Buffer[];
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
  let backend: BackendSession;
  try {
    backend = await connectBackend({ socketDir: g.socketDir(server.id), params: a.forward, clientKey: proof.clientKey, serverKey: proof.serverKey });
  } catch (err) {
    clearTimeout(timer);
    proof.clientKey.fill(0);
    if (!(err instanceof BackendRefused)) throw err;
    // The server's own refusal (database does not exist, password changed in SQL, ...).
    if (err.sqlstate === '28P01') g.verifiers.loginFailed(server.id, a.user);
    return refusal({ sqlstate: err.sqlstate, message: err.message }, `server refused: ${err.message}`, {
      event: 'auth.failed',
      method: proof.method,
      frame: err.frame,
    });
  }
  clearTimeout(timer);
  proof.clientKey.fill(0);
  // The real backend pid, with a secret of the gateway's own (longer from protocol 3.2).
  const key = g.cancelKeys.issue(
    { socketDir: g.socketDir(server.id), processId: backend.processId, secretKey: backend.secretKey },
    start.protocolMinor >= 2 ? LONG_CANCEL_KEY_LENGTH : 4,
  );
  return { ok: true, login: { method: proof.method, backend, key, preamble: proof.preamble } };
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
    return { ok: true, method: 'token', clientKey: Buffer.from(keys.clientKey), serverKey: keys.serverKey, preamble: [] };
  }
  if (server.passwordAuth === 'Disabled') return refusal(clientErrors.passwordAuthDisabled, 'password-auth-disabled');
  const auth = await authenticatePassword({
    wire: start.wire,
    user,
    channelBinding: start.tls?.channelBinding ?? null,
    lookup: () => g.verifiers.get(server.id, user),
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
  };
}

/** Strict durability: the login is on disk before the client hears it succeeded. */
export async function greet(g: GatewayContext, socket: Duplex, login: Login): Promise<void> {
  await g.audit.durable();
  socket.write(
    Buffer.concat([
      ...login.preamble,
      authenticationOk(),
      ...login.backend.greeting,
      backendKeyData(login.key.processId, login.key.secretKey),
      login.backend.readyForQuery,
    ]),
  );
}
