// One client connection through the gateway, in the order of SPEC.md §3: the handshake (steps
// 1–2), the checks (3–7), authentication (8), the session (9). Every refusal, with its event and
// metric, is reported here; what a check took is held here until the session takes it over.
import type net from 'node:net';
import { handshake, type HandshakeEnv } from './handshake/handshake.js';
import { forwardCancel } from './handshake/cancel.js';
import { runChecks } from './checks/steps.js';
import { HeldGuards, type Refusal } from './checks/verdict.js';
import { abandonLogin, authenticate, greet } from './login.js';
import { startSession } from './session.js';
import { failureRefusal, reportRefusal, sessionFields, type Facts } from './report.js';
import type { GatewayContext, ListenerSpec } from './context.js';
import { serverFromSni } from './route.js';
import { now } from '../events/bus.js';

/** `preauth`: the connection's place under the gateway's pre-auth caps, given back once the
 * login succeeded (the gateway also gives it back when the socket closes). */
export async function handleConnection(raw: net.Socket, g: GatewayContext, listener: ListenerSpec, preauth?: { release(): void }): Promise<void> {
  raw.setNoDelay(true);
  raw.setKeepAlive(true, 60_000);
  raw.on('error', () => undefined); // a reset during the handshake only ends this connection

  // Steps 1–2.
  const hs = await handshake(raw, { address: raw.remoteAddress ?? '', port: raw.remotePort ?? 0 }, listener, handshakeEnv(g));
  if (hs.kind === 'cancel') {
    // Not a session of this process: the gateway's other processes are asked (`--gateway-workers`).
    if (!(await forwardCancel(g.cancelKeys, hs.processId, hs.secretKey))) await g.cancelElsewhere?.(hs.processId, hs.secretKey);
    raw.destroy();
    return;
  }
  if (hs.kind === 'refused') {
    if (hs.conn && hs.refusal) reportRefusal(g, hs.socket, { conn: hs.conn, ssl: false }, hs.refusal, hs.accepted);
    else hs.socket.destroy();
    return;
  }

  const { conn, socket, tls } = hs;
  const facts: Facts = { conn, ssl: tls !== null, user: hs.params.get('user'), applicationName: hs.params.get('application_name') };
  if (tls)
    g.bus.publish({
      type: 'tls.established',
      time: now(),
      connection: conn,
      version: tls.version,
      cipher: tls.cipher,
      sni: tls.sni,
      alpn: tls.alpn ?? undefined,
    });
  const refuse = (r: Refusal) => reportRefusal(g, socket, facts, r);
  const held = new HeldGuards();
  try {
    // Steps 3–7.
    const checked = runChecks(
      {
        sni: tls?.sni,
        params: hs.params,
        domain: g.domain,
        servers: g.snapshot().servers,
        clientAddress: hs.clientAddress,
        listener: listener.kind === 'private' ? { kind: 'private', vnet: listener.vnet } : { kind: listener.kind },
        endpoint: hs.endpoint,
        tlsVersion: tls?.version ?? null,
      },
      g,
      held,
    );
    const routed = checked.admission;
    if (routed) Object.assign(facts, { server: routed.server.name, user: routed.user, database: routed.database });
    if (!checked.ok) return refuse(checked.refusal);
    const a = checked.admission;

    // Step 8.
    hs.stopDeadline(); // the authentication timer takes over
    const auth = await authenticate(g, hs, a, facts);
    if (!auth.ok) return refuse(auth);
    const { login } = auth;
    g.bus.publish({ type: 'auth.succeeded', time: now(), connection: conn, ...sessionFields(facts), method: login.method });
    preauth?.release(); // authenticated: no longer counted against the pre-auth caps
    try {
      await greet(g, socket, login);
    } catch (err) {
      // No session will own the server connection or the cancel key: give both back now.
      abandonLogin(login);
      throw err;
    }
    g.metrics.sessions.inc();

    // Step 9.
    startSession(g, {
      conn,
      fields: sessionFields(facts),
      serverName: a.server.name,
      user: a.user,
      endpointId: hs.endpoint?.id ?? null,
      database: facts.database,
      applicationName: facts.applicationName,
      client: socket,
      clientRest: hs.wire.detach(),
      server: login.server,
      releaseSession: held.handOver(),
      releaseKey: () => login.key.release(),
    });
  } catch (err) {
    hs.stopDeadline();
    const r = failureRefusal(err);
    if (r) refuse(r);
    else socket.destroy();
  } finally {
    held.releaseAll();
  }
}

function handshakeEnv(g: GatewayContext): HandshakeEnv {
  return {
    limits: g.limits,
    certificates: g.certificates,
    serverNames: () => g.snapshot().servers.keys(),
    log: g.log,
    nativeRelay: g.nativeRelay ?? null,
    // Transaction pooling runs in JavaScript message by message: on Node's TLS it saves every
    // message two thread hops through the addon (bench:gateway's transaction legs: at 1 client
    // 0.23 ms per transaction against 0.37-0.43, and less CPU). Known here only when the SNI
    // names the server; a connection routed by `user@server` goes to the addon.
    keepOnNodeTls: (sni) => {
      const server = serverFromSni(sni, g.domain);
      return server !== null && g.snapshot().servers.get(server)?.poolMode === 'transaction';
    },
    accepted: (conn) => g.bus.publish({ type: 'connection.accepted', time: now(), connection: conn }),
  };
}
