// Step 9: an authenticated session relayed to its server. One observer frames the relayed
// protocol once; the statement audit and the SQL watch subscribe to it; the session is counted,
// indexed and released here.
import type { Duplex } from 'node:stream';
import { relay, type RelayHandle } from './relay.js';
import type { BackendSession } from './backend.js';
import type { GatewayContext } from './context.js';
import type { ConnectionContext } from '../events/types.js';
import { startSessionAudit } from '../audit/statement-audit.js';
import { eventSession, statementExecuted } from '../audit/statement-json.js';
import { SessionObserver, type SessionConsumer } from '../pgwire/index.js';
import { now } from '../events/bus.js';

export interface SessionStart {
  readonly conn: ConnectionContext;
  /** The session's fields for events (server, user, database, application name, object id). */
  readonly fields: { server?: string; user?: string; database?: string; applicationName?: string; objectId?: string };
  readonly serverName: string;
  readonly user: string;
  readonly endpointId: string | null;
  readonly database: string | undefined;
  readonly applicationName: string | undefined;
  readonly client: Duplex;
  /** Client bytes read past the handshake. */
  readonly clientRest: Buffer;
  readonly backend: BackendSession;
  /** Gives back the server's connection slot. */
  readonly releaseSession: () => void;
  /** Forgets the session's cancel key. */
  readonly releaseKey: () => void;
}

/** The client's error when the statement audit of its session stopped (the reason is in the audit log). */
const TAP_STOPPED = {
  sqlstate: '58030',
  message: 'Statement audit stopped for this session, so the session was ended.',
} as const;

export function startSession(g: GatewayContext, s: SessionStart): void {
  const started = Date.now();
  const session = {
    server: s.serverName,
    privateEndpoint: s.endpointId,
    connId: s.conn.connId,
    backendPid: s.backend.processId,
    user: s.user,
    applicationName: s.applicationName,
    handle: null as RelayHandle | null,
  };
  g.activeSessions.add(session);
  g.sessionIndex.opened(session);
  // Statement audit: the relayed protocol decoded and classified, when the server asks for it.
  const auditConfig = g.statementAudit(s.serverName);
  const eventFields = auditConfig ? eventSession(s.conn, s.fields) : null;
  const audit = auditConfig
    ? startSessionAudit(
        auditConfig,
        (st) => g.bus.publish(statementExecuted(now(), eventFields!, st)),
        // Fail closed: a session the audit cannot follow is ended, and the log says why.
        (reason) => {
          g.log.error({ connId: s.conn.connId, reason }, 'statement audit stopped: the session is ended');
          g.bus.publish({ type: 'audit.tap-stopped', time: now(), connection: s.conn, ...s.fields, reason });
          session.handle?.terminate(TAP_STOPPED);
        },
      )
    : null;
  const watch = g.threat.sqlTap(s.serverName, s.user, s.applicationName, {
    clientAddress: s.conn.clientAddress,
    ...(s.database ? { database: s.database } : {}),
  });
  const consumers: SessionConsumer[] = [];
  if (audit) consumers.push(audit);
  if (watch) consumers.push(watch);
  session.handle = relay({
    client: s.client,
    server: s.backend.socket,
    clientRest: s.clientRest,
    serverRest: s.backend.rest,
    observer: new SessionObserver(consumers),
    hold: audit && g.audit.strict ? () => g.audit.pendingDurable() : undefined,
    onHandle: (handle) => (session.handle = handle),
    onEnd: (stats) => {
      g.activeSessions.delete(session);
      g.sessionIndex.closed(session);
      s.releaseSession();
      s.releaseKey();
      g.metrics.sessions.dec();
      g.bus.publish({ type: 'session.ended', time: now(), connection: s.conn, ...s.fields, ...stats, durationMs: Date.now() - started });
    },
  });
}
