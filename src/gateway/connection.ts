// One client connection through the gateway, step by step as SPEC.md §3 lists them. Each step
// is a function of its own file; this one only runs them in order and says what happened.
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import {
  authenticationOk,
  authenticationSASLFinal,
  backendKeyData,
  cancelRequest,
  EncryptionRequests,
  errorResponse,
  gssEncResponse,
  negotiateProtocolVersion,
  closesWithoutMessage,
  NEWEST_PROTOCOL_MINOR,
  parseStartupPacket,
  ProtocolError,
  sslResponse,
  type StartupPacket,
} from '../pgwire/index.js';
import { Wire, ConnectionClosed } from './wire.js';
import { routeConnection } from './route.js';
import { decideState } from './server-state.js';
import { decideTls } from './tls-policy.js';
import { authenticatePassword } from './authenticate.js';
import { connectBackend, BackendRefused, socketPath } from './backend.js';
import { startSession } from './session.js';
import { LONG_CANCEL_KEY_LENGTH } from './cancel-keys.js';
import { clientErrors, passwordFailed, type ClientError } from '../pgwire/client-errors.js';
import type { GatewayContext, ListenerSpec } from './context.js';
import type { AuthMethod, ConnectionContext } from '../events/types.js';
import { authenticateToken } from './token-login.js';
import { isTrusted, readProxyHeader, ProxyRefused } from './proxy-stage.js';
import { judgeNetwork, type PrivateEndpointIdentity } from './network-stage.js';
import { judgeStartupParams } from './startup-policy.js';
import { now } from '../events/bus.js';

interface TlsState {
  readonly socket: tls.TLSSocket;
  readonly version: string;
  readonly cipher: string;
  readonly sni: string | undefined;
  readonly channelBinding: Buffer | null;
}

/** What later steps know about the session, for events. */
interface Facts {
  conn: ConnectionContext;
  server?: string;
  user?: string;
  database?: string;
  applicationName?: string;
  /** The identity's object id, for token logins. */
  objectId?: string;
  ssl: boolean;
}

const TLS_RECORD_HANDSHAKE = 0x16;

/** `preauth`: the connection's place under the gateway's pre-auth caps, given back once the
 * login succeeded (the gateway also gives it back when the socket closes). */
export async function handleConnection(raw: net.Socket, g: GatewayContext, listener: ListenerSpec, preauth?: { release(): void }): Promise<void> {
  raw.setNoDelay(true);
  raw.setKeepAlive(true, 60_000);
  raw.on('error', () => undefined); // a reset during the handshake only ends this connection
  const deadline = setTimeout(() => raw.destroy(), g.limits.handshakeTimeoutMs);
  let clientAddress = normalizeAddress(raw.remoteAddress ?? '');
  let clientPort = raw.remotePort ?? 0;
  let endpoint: PrivateEndpointIdentity | null = null;
  let first: Buffer;

  // Step 1 behind a load balancer: one PROXY header, only from the load balancers.
  try {
    if (listener.kind !== 'private' && listener.proxy) {
      if (!isTrusted(clientAddress, listener.proxy)) throw new ProxyRefused('untrusted-source');
      const { header, rest } = await readProxyHeader(raw);
      // readProxyHeader refuses a header without a client address; never fall back to the
      // load balancer's own.
      if (!header.source) throw new ProxyRefused('no-client-address');
      clientAddress = normalizeAddress(header.source.address);
      clientPort = header.source.port;
      if (header.azureLinkId !== undefined) endpoint = { id: String(header.azureLinkId), kind: 'azure-private-link' };
      else if (header.awsVpceId !== undefined) endpoint = { id: header.awsVpceId, kind: 'aws-vpc-endpoint' };
      first = rest.length ? rest : await firstChunk(raw);
    } else {
      first = await firstChunk(raw);
    }
  } catch (err) {
    clearTimeout(deadline);
    raw.destroy();
    if (err instanceof ProxyRefused) {
      const conn = { connId: randomUUID(), clientAddress, clientPort, listener: listener.kind };
      g.bus.publish({ type: 'connection.denied', time: now(), connection: conn, reason: `proxy-${err.reason}`, sqlstate: '08P01', ssl: false });
      g.metrics.denied.inc({ reason: `proxy-${err.reason}` });
    }
    return;
  }

  const facts: Facts = {
    conn: {
      connId: randomUUID(),
      clientAddress,
      clientPort,
      listener: endpoint ? 'private-link' : listener.kind === 'private' ? 'private' : 'public',
      ...(listener.kind === 'private' ? { listenerName: listener.vnet } : {}),
      ...(endpoint ? { privateEndpoint: endpoint.id } : {}),
    },
    ssl: false,
  };
  g.bus.publish({ type: 'connection.accepted', time: now(), connection: facts.conn });
  let socket: Duplex = raw;
  let release: (() => void) | null = null;

  const refuse = (error: ClientError, reason: string, event: 'connection.denied' | 'auth.failed' = 'connection.denied', method: AuthMethod = 'scram-sha-256') => {
    if (event === 'auth.failed') {
      g.bus.publish({ type: 'auth.failed', time: now(), connection: facts.conn, ...sessionFields(facts), method, sqlstate: error.sqlstate, reason });
    } else {
      g.bus.publish({ type: 'connection.denied', time: now(), connection: facts.conn, ...sessionFields(facts), reason, sqlstate: error.sqlstate, ssl: facts.ssl });
    }
    // One label for every failed authentication: the reason (unknown role, wrong password, bad
    // token) is in the audit event only, never in the metrics anyone with a token can read.
    g.metrics.denied.inc({ reason: event === 'auth.failed' ? 'auth-failed' : reason });
    socket.end(errorResponse({ severity: 'FATAL', sqlstate: error.sqlstate, message: error.message }));
  };

  try {
    // Step 2: encryption negotiation, until a StartupMessage (or a CancelRequest) arrives.
    let tlsState: TlsState | null = null;
    let wire: Wire;
    if (first[0] === TLS_RECORD_HANDSHAKE) {
      tlsState = await startTls(wrapWithPrefix(raw, first), g, true);
      socket = tlsState.socket;
      wire = new Wire(socket, 'startup');
    } else {
      wire = new Wire(raw, 'startup');
      wire.feed(first);
    }
    let startup: Extract<StartupPacket, { kind: 'startup' }> | null = null;
    const encryptionRequests = new EncryptionRequests();
    while (!startup) {
      const packet = parseStartupPacket(await wire.readStartup(), { maxLength: g.limits.maxStartupPacket });
      if (packet.kind === 'cancel') {
        clearTimeout(deadline);
        await forwardCancel(g, packet.processId, packet.secretKey);
        raw.destroy();
        return;
      }
      if (packet.kind === 'gssenc') {
        encryptionRequests.check('gssenc', tlsState !== null);
        wire.write(gssEncResponse(false));
        continue;
      }
      if (packet.kind === 'ssl') {
        encryptionRequests.check('ssl', tlsState !== null);
        // Anything sent after SSLRequest before the handshake would be read as if it were
        // encrypted (CVE-2021-23214): refuse it.
        if (wire.buffered > 0) throw new ProtocolError('08P01', 'received unencrypted data after SSL request');
        wire.detach();
        raw.write(sslResponse(true));
        tlsState = await startTls(raw, g, false);
        socket = tlsState.socket;
        wire = new Wire(socket, 'startup');
        continue;
      }
      startup = packet;
    }
    if (tlsState) {
      facts.ssl = true;
      g.bus.publish({ type: 'tls.established', time: now(), connection: facts.conn, version: tlsState.version, cipher: tlsState.cipher, sni: tlsState.sni, alpn: tlsState.socket.alpnProtocol || undefined });
    }
    wire.switchToMessages();

    // Protocol 3.0 to 3.2 (3.2: PostgreSQL 18's longer cancel key); newer minors and _pq_
    // extensions are declined politely, as PostgreSQL does.
    const unknownOptions = [...startup.params.keys()].filter((k) => k.startsWith('_pq_.'));
    for (const k of unknownOptions) startup.params.delete(k);
    const protocolMinor = Math.min(startup.minorVersion, NEWEST_PROTOCOL_MINOR);
    if (startup.minorVersion > NEWEST_PROTOCOL_MINOR || unknownOptions.length) wire.write(negotiateProtocolVersion(protocolMinor, unknownOptions));

    // Step 3: which server.
    const snapshot = g.snapshot();
    const route = routeConnection({
      sni: tlsState?.sni,
      params: startup.params,
      domain: g.domain,
      serverExists: (name) => snapshot.servers.has(name),
    });
    facts.user = startup.params.get('user');
    facts.applicationName = startup.params.get('application_name');
    if (!route.ok) return refuse(route.error, route.reason);
    const server = snapshot.servers.get(route.server)!;
    facts.server = server.name;
    facts.user = route.user;
    facts.database = route.forward.get('database');

    // The audit log must be able to record this session (failClosed).
    if (!g.audit.acceptsConnections) return refuse(clientErrors.auditUnavailable, 'audit-unavailable');

    // Step 4: server state.
    const state = decideState(server.state);
    if (!state.ok) return refuse(state.error, state.reason);

    // Step 5: network rules.
    const network = judgeNetwork(g.network(), {
      server: server.name,
      publicNetworkAccess: server.publicNetworkAccess,
      clientAddress,
      listener: listener.kind === 'private' ? { kind: 'private', vnet: listener.vnet } : { kind: listener.kind },
      endpoint,
      user: route.user,
      database: facts.database!,
      ssl: facts.ssl,
    });
    if (!network.allow) {
      if (network.reason === 'private-endpoint-unknown' && endpoint) g.registerPendingEndpoint(server.name, endpoint);
      return refuse(network.error, network.reason);
    }

    // Step 6: TLS policy.
    const tlsVerdict = decideTls(server, { version: tlsState?.version ?? null });
    if (!tlsVerdict.ok) return refuse(tlsVerdict.error, tlsVerdict.reason);

    // No replication connections and none of the platform's own application_name values, before
    // any password is asked for and before any server is contacted.
    const startupPolicy = judgeStartupParams(route.forward);
    if (!startupPolicy.ok) return refuse(startupPolicy.error, startupPolicy.reason);

    // Step 7: automatic protection throttles addresses and (user, address) pairs that keep failing.
    if (g.threat.blocked(server.name, clientAddress, route.user)) return refuse(clientErrors.throttled, 'throttled');

    // Connection limit per server (PostgreSQL's own text).
    release = g.sessions.acquire(server.id);
    if (!release) return refuse(clientErrors.tooManyClients, 'too-many-connections');

    // Step 8: authentication at the gateway: a token for the server's principals, SCRAM for
    // every other role.
    clearTimeout(deadline);
    const authDeadline = setTimeout(() => socket.destroy(), g.limits.authTimeoutMs);
    const identity = snapshot.identity.get(server.name);
    const principal = identity?.principals.get(route.user) ?? null;
    let login: { method: AuthMethod; clientKey: Buffer; serverKey: Buffer; preamble: Buffer[] };
    if (principal) {
      const result = tlsState
        ? await authenticateToken({ wire, admin: identity!.admin, principal, verify: g.verifyToken })
        : { ok: false as const, reason: 'token over a plaintext connection' };
      if (!result.ok) {
        clearTimeout(authDeadline);
        return refuse(clientErrors.badToken, result.reason, 'auth.failed', 'token');
      }
      facts.objectId = result.objectId;
      const keys = g.principalKeys(server.id, route.user);
      login = { method: 'token', clientKey: Buffer.from(keys.clientKey), serverKey: keys.serverKey, preamble: [] };
    } else {
      if (server.passwordAuth === 'Disabled') {
        clearTimeout(authDeadline);
        return refuse(clientErrors.passwordAuthDisabled, 'password-auth-disabled');
      }
      const auth = await authenticatePassword({
        wire,
        user: route.user,
        channelBinding: tlsState?.channelBinding ?? null,
        lookup: () => g.verifiers.get(server.id, route.user),
        mockSecret: g.mockSecret,
        serverId: server.id,
      });
      if (!auth.ok) {
        clearTimeout(authDeadline);
        g.verifiers.loginFailed(server.id, route.user);
        return refuse(passwordFailed(route.user), auth.reason, 'auth.failed');
      }
      login = {
        method: auth.mechanism === 'SCRAM-SHA-256-PLUS' ? 'scram-sha-256-plus' : 'scram-sha-256',
        clientKey: auth.clientKey,
        serverKey: auth.serverKey,
        preamble: [authenticationSASLFinal(auth.serverFinal)],
      };
    }
    const method = login.method;
    let backend;
    try {
      backend = await connectBackend({
        socketDir: g.socketDir(server.id),
        params: route.forward,
        clientKey: login.clientKey,
        serverKey: login.serverKey,
      });
    } catch (err) {
      clearTimeout(authDeadline);
      login.clientKey.fill(0);
      if (err instanceof BackendRefused) {
        // The server's own refusal (database does not exist, password changed in SQL, ...).
        if (err.sqlstate === '28P01') g.verifiers.loginFailed(server.id, route.user);
        g.bus.publish({ type: 'auth.failed', time: now(), connection: facts.conn, ...sessionFields(facts), method, sqlstate: err.sqlstate, reason: `server refused: ${err.message}` });
        socket.end(err.frame);
        return;
      }
      throw err;
    }
    clearTimeout(authDeadline);
    login.clientKey.fill(0);
    // The real backend pid, with a secret of the gateway's own (longer from protocol 3.2).
    const key = g.cancelKeys.issue(
      { socketDir: g.socketDir(server.id), processId: backend.processId, secretKey: backend.secretKey },
      protocolMinor >= 2 ? LONG_CANCEL_KEY_LENGTH : 4,
    );
    g.bus.publish({ type: 'auth.succeeded', time: now(), connection: facts.conn, ...sessionFields(facts), method });
    preauth?.release(); // authenticated: no longer counted against the pre-auth caps
    await g.audit.durable(); // strict durability: the login is on disk before the session goes on
    socket.write(Buffer.concat([
      ...login.preamble,
      authenticationOk(),
      ...backend.greeting,
      backendKeyData(key.processId, key.secretKey),
      backend.readyForQuery,
    ]));
    g.metrics.sessions.inc();

    // Step 9: relay.
    const releaseSession = release;
    release = null;
    startSession(g, {
      conn: facts.conn,
      fields: sessionFields(facts),
      serverName: server.name,
      user: route.user,
      endpointId: endpoint?.id ?? null,
      database: facts.database,
      applicationName: facts.applicationName,
      client: socket,
      clientRest: wire.detach(),
      backend,
      releaseSession,
      releaseKey: () => key.release(),
    });
  } catch (err) {
    clearTimeout(deadline);
    if (err instanceof ProtocolError && closesWithoutMessage(err)) {
      // As PostgreSQL's ProcessStartupPacket: logged (here: the audit log), nothing sent.
      g.bus.publish({ type: 'connection.denied', time: now(), connection: facts.conn, ...sessionFields(facts), reason: 'invalid-startup-length', sqlstate: err.sqlstate, ssl: facts.ssl });
      g.metrics.denied.inc({ reason: 'invalid-startup-length' });
      socket.destroy();
    } else if (err instanceof ProtocolError) {
      refuse({ sqlstate: err.sqlstate, message: err.message }, 'protocol-violation');
    } else if (err instanceof ConnectionClosed || isSocketError(err)) {
      socket.destroy();
    } else {
      g.log.error({ err, connId: facts.conn.connId }, 'gateway connection failed');
      refuse({ sqlstate: 'XX000', message: 'internal error in the gateway' }, 'internal-error');
    }
  } finally {
    release?.();
  }
}

function sessionFields(f: Facts) {
  return { server: f.server, user: f.user, database: f.database, applicationName: f.applicationName, ...(f.objectId ? { objectId: f.objectId } : {}) };
}

function isSocketError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('E') || code.startsWith('ERR_SSL') || code === 'ERR_STREAM_DESTROYED');
}

/** IPv4-mapped IPv6 addresses are judged, logged and shown as IPv4. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function firstChunk(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      cleanup();
      socket.pause();
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      reject(new ConnectionClosed());
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.resume(); // the PROXY stage pauses the socket after its header
  });
}

/** A duplex that yields `prefix` and then the socket's bytes: for direct TLS, whose first
 * record was already read while sniffing. */
function wrapWithPrefix(socket: net.Socket, prefix: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  duplex.push(prefix);
  socket.on('data', (c: Buffer) => {
    if (!duplex.push(c)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

async function startTls(transport: Duplex, g: GatewayContext, direct: boolean): Promise<TlsState> {
  let cert = g.certificates.current;
  const socket = new tls.TLSSocket(transport, {
    isServer: true,
    secureContext: cert.context,
    ALPNProtocols: ['postgresql'],
    // A server created a moment ago: its host name is put in the certificate before the answer.
    SNICallback: (servername, done) => {
      g.certificates.forHost(servername, () => g.snapshot().servers.keys()).then(
        (chosen) => {
          cert = chosen;
          done(null, chosen.context);
        },
        (err: Error) => {
          g.log.error({ err }, 'gateway certificate could not be reissued: the current one is presented');
          done(null, cert.context);
        },
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    const onClose = () => fail(new ConnectionClosed());
    const fail = (err: Error) => {
      socket.off('secure', onSecure);
      socket.off('close', onClose);
      reject(err);
    };
    const onSecure = () => {
      socket.off('error', fail);
      socket.off('close', onClose);
      resolve();
    };
    socket.once('secure', onSecure);
    socket.once('error', fail);
    socket.once('close', onClose);
  });
  socket.on('error', () => undefined);
  if (direct && socket.alpnProtocol !== 'postgresql') {
    socket.destroy();
    throw new ConnectionClosed(); // direct TLS requires ALPN "postgresql" (PostgreSQL 17)
  }
  const cipher = socket.getCipher();
  return {
    socket,
    version: socket.getProtocol() ?? 'unknown',
    cipher: cipher?.standardName ?? cipher?.name ?? 'unknown',
    sni: (socket as tls.TLSSocket & { servername?: string | false }).servername || undefined,
    channelBinding: cert.channelBinding,
  };
}

/** CancelRequest: forwarded to the right server when the key is known; the client is told
 * nothing either way. */
async function forwardCancel(g: GatewayContext, processId: number, secretKey: Buffer): Promise<void> {
  const target = g.cancelKeys.lookup(processId, secretKey);
  if (!target) return;
  await new Promise<void>((resolve) => {
    const s = net.connect(socketPath(target.socketDir));
    s.on('connect', () => s.end(cancelRequest(target.processId, target.secretKey)));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}
