// Step 9: an authenticated session relayed to its server. One observer frames the relayed
// protocol once; the statement audit and the SQL watch subscribe to it; the session is counted,
// indexed and released here. A pooled session relays to a connection of its pool (session
// mode) or to one lent per transaction (transaction-relay.ts); the observer stays the client's,
// so every statement record names the client's session, never the backend's other clients.
import type { Duplex } from 'node:stream';
import { relay, type RelayHandle, type RelayStats } from './relay.js';
import type { ServerSide } from './login.js';
import type { ReturnState } from './pool/types.js';
import { startTransactionSession } from './pool/transaction-relay.js';
import { NativeClientSocket } from './native/client-socket.js';
import { nativeRelay, nativeRelayCounters } from './native/session-relay.js';
import type { GatewayContext } from './context.js';
import type { ConnectionContext } from '../events/types.js';
import { startSessionAudit } from '../audit/statement-audit.js';
import { eventSession, sessionRecordParts, shapeRecordParts, statementExecuted } from '../audit/statement-json.js';
import { DEFAULT_MAX_TEXT_BYTES, type QuerySummary as SummaryOfShape } from '../audit/tap/index.js';
import { errorResponse, ObserverClock, SessionObserver, type QuerySummary, type SessionConsumer } from '../pgwire/index.js';
import { isoTime, now } from '../events/bus.js';

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
  readonly server: ServerSide;
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

/** The client's error when the SQL-injection watch of its session stopped (the reason is in the audit log). */
const WATCH_STOPPED = {
  sqlstate: '58030',
  message: 'SQL-injection detection stopped for this session, so the session was ended.',
} as const;

export function startSession(g: GatewayContext, s: SessionStart): void {
  const started = Date.now();
  const side = s.server;
  const session = {
    server: s.serverName,
    privateEndpoint: s.endpointId,
    connId: s.conn.connId,
    backendPid: side.kind === 'direct' ? side.backend.processId : side.kind === 'session' ? side.conn.processId : 0,
    user: s.user,
    applicationName: s.applicationName,
    handle: null as RelayHandle | null,
  };
  g.activeSessions.add(session);
  if (side.kind !== 'transaction') g.sessionIndex.opened(session);
  // Statement audit: the relayed protocol decoded and classified, when the server asks for it.
  const auditConfig = g.statementAudit(s.serverName);
  const eventFields = auditConfig ? eventSession(s.conn, s.fields) : null;
  // Statements are timed by when the relay read their bytes (the native relay says so in its events).
  const clock = new ObserverClock();
  const audit = auditConfig
    ? startSessionAudit(
        auditConfig,
        // When the relay read the statement's end (on the native relay, not when its batch was taken).
        (st) => g.bus.publish(statementExecuted(isoTime(clock.wallMs()), eventFields!, st)),
        // Fail closed: a session the audit cannot follow is ended, and the log says why.
        (reason) => {
          g.log.error({ connId: s.conn.connId, reason }, 'statement audit stopped: the session is ended');
          g.bus.publish({ type: 'audit.tap-stopped', time: now(), connection: s.conn, ...s.fields, reason });
          session.handle?.terminate(TAP_STOPPED);
        },
        clock.now,
      )
    : null;
  const watch = g.threat.sqlTap(s.serverName, s.user, s.applicationName, {
    clientAddress: s.conn.clientAddress,
    ...(s.database ? { database: s.database } : {}),
    // Fail closed as the audit does: a session the SQL-injection watch cannot follow is ended.
    onStopped: (reason) => {
      g.log.error({ connId: s.conn.connId, reason }, 'SQL-injection watch stopped: the session is ended');
      g.bus.publish({ type: 'threat.watch-stopped', time: now(), connection: s.conn, ...s.fields, reason });
      session.handle?.terminate(WATCH_STOPPED);
    },
  });
  const consumers: SessionConsumer[] = [];
  if (audit) consumers.push(audit);
  if (watch) consumers.push(watch);
  const hold = audit && g.audit.strict ? () => g.audit.pendingDurable() : undefined;
  let ended = false;
  // An ended session keeps no handle: the index holds the session for minutes (pgAudit lines
  // are joined to it), and a handle would keep the whole relay (sockets, observer, audit tap)
  // alive with it, each new connection adding to the heap every garbage collection marks.
  const keepHandle = (handle: RelayHandle) => {
    if (!ended) session.handle = handle;
  };
  const onEnd = (stats: RelayStats) => {
    if (ended) return;
    ended = true;
    session.handle = null;
    g.activeSessions.delete(session);
    if (side.kind !== 'transaction') g.sessionIndex.closed(session);
    if (side.kind !== 'direct') side.lender.end();
    s.releaseSession();
    s.releaseKey();
    g.metrics.sessions.dec();
    g.bus.publish({ type: 'session.ended', time: now(), connection: s.conn, ...s.fields, ...stats, durationMs: Date.now() - started });
  };

  if (side.kind !== 'transaction') {
    // A pooled connection (session mode) goes back to its pool at the client's end.
    const pooled =
      side.kind === 'session'
        ? {
            release: (state: ReturnState) => {
              // From now on the backend may serve another client: this one's cancel key and its
              // hold in the index end before the pool can lend it again.
              s.releaseKey();
              g.sessionIndex.closed(session);
              side.lender.release(side.conn, state);
            },
          }
        : undefined;
    const server = side.kind === 'direct' ? side.backend.socket : side.conn.socket;
    let serverRest: Buffer;
    if (side.kind === 'direct') serverRest = side.backend.rest;
    else {
      serverRest = side.conn.rest;
      side.conn.rest = Buffer.alloc(0);
    }
    const client = s.client;
    // The native relay carries sessions whose client it took over (TLS); transaction mode is
    // relayed message by message in JavaScript, over the addon's plaintext Duplex.
    if (client instanceof NativeClientSocket) {
      // Statements no consumer needs (the audit records nothing of them, the SQL watch judged
      // their shape for good) are relayed unobserved once their shape is known. The audit's
      // verdict is its configuration's (one set for every session of it); the watch's is this
      // session's role and application's (a set of the session's own).
      // Statements the audit records are summarized instead when their shape tells it all it
      // needs (the relay then hands over their text, times and command tag, not their bytes):
      // not under strict durability, whose replies wait for their records.
      const none = { set: 0, drop: () => undefined };
      const summaries = hold === undefined;
      // With every audit class on and no summaries no statement can be quiet: no keys to compute.
      const possible = g.quietStatements !== false && (auditConfig?.recordsEverything !== true || summaries);
      const quiet = !possible ? none : watch ? client.host.sessionQuietSet() : auditConfig ? { ...none, set: client.host.quietSet(auditConfig) } : none;
      const quietSet = quiet.set;
      const host = client.host;
      // Where the log is this process's own, the relay writes their records itself (the text
      // statementExecuted makes) and the log takes them as they are.
      // The relay hands them in runs, of any sessions of one log (the sink names the log).
      const appendRecords = g.audit.appendRecords?.bind(g.audit);
      const record =
        quietSet && summaries && appendRecords && eventFields
          ? {
              parts: sessionRecordParts(eventFields, DEFAULT_MAX_TEXT_BYTES),
              sink: host.recordSink(g.audit, (data, count) => {
                nativeRelayCounters.records += count;
                appendRecords(data, count);
              }),
            }
          : undefined;
      const onQuiet = quietSet
        ? (key: Buffer, summary?: QuerySummary) => {
            if (summary === undefined) host.quiet(quietSet, key);
            else if (summaries) {
              const s = summary as SummaryOfShape;
              host.quiet(quietSet, key, summary, record ? shapeRecordParts(s.info, s.lead, s.trail) : undefined);
            }
          }
        : undefined;
      const observer = consumers.length ? new SessionObserver(consumers, { skipRecords: true, ...(onQuiet ? { onQuiet } : {}) }) : null;
      // Bytes the addon cannot frame never reach the server; the client is told as on the
      // JavaScript relay, by the consumer that fails closed (no consumer: a plain close, as
      // PostgreSQL closes on a bad message length).
      const stopped = audit ? TAP_STOPPED : watch ? WATCH_STOPPED : null;
      const clientFramingError = stopped ? errorResponse({ severity: 'FATAL', ...stopped }) : Buffer.alloc(0);
      const handle = nativeRelay({
        client,
        server,
        clientRest: s.clientRest,
        serverRest,
        observer,
        clock,
        clientFramingError,
        quietSet,
        ...(quietSet && summaries ? { summaries: host.summariesOf(quietSet) } : {}),
        ...(record ? { record } : {}),
        ...(hold ? { hold } : {}),
        onHandle: keepHandle,
        ...(pooled ? { pooled } : {}),
        onEnd: (stats) => {
          quiet.drop();
          onEnd(stats);
        },
      });
      keepHandle(handle);
      return;
    }
    const handle = relay({
      client,
      server,
      clientRest: s.clientRest,
      serverRest,
      observer: new SessionObserver(consumers),
      hold,
      onHandle: keepHandle,
      ...(pooled ? { pooled } : {}),
      onEnd,
    });
    keepHandle(handle);
    return;
  }

  // Transaction mode: the index records which backend the session holds, lend by lend.
  try {
    const tx = startTransactionSession({
      client: s.client,
      clientRest: s.clientRest,
      lender: side.lender,
      observer: new SessionObserver(consumers),
      applicationName: s.applicationName ?? '',
      ...(hold ? { hold } : {}),
      onHandle: keepHandle,
      onLend: (conn) => g.sessionIndex.lent(session, conn.processId),
      onReturn: (conn) => g.sessionIndex.returned(session, conn.processId),
      onEnd,
    });
    side.holder.current = () => tx.current();
    keepHandle(tx);
  } catch (err) {
    g.log.error({ err, connId: s.conn.connId }, 'transaction-mode session could not start');
    s.client.end(errorResponse({ severity: 'FATAL', sqlstate: 'XX000', message: 'transaction pooling is not available' }));
    onEnd({ bytesFromClient: 0, bytesToClient: 0 });
  }
}
