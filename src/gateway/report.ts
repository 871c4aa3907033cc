// What happened to a connection, told in one place: the refusal's audit event, its metric and
// the client's error; and which failures are refusals at all.
import type { Duplex } from 'node:stream';
import { closesWithoutMessage, errorResponse, ProtocolError } from '../pgwire/index.js';
import { ConnectionClosed } from './wire.js';
import { refusal, type Refusal } from './checks/verdict.js';
import type { ConnectionContext, GatewayEvent } from '../events/types.js';
import { now } from '../events/bus.js';

/** What the steps so far know about the session, for events. */
export interface Facts {
  conn: ConnectionContext;
  server?: string;
  user?: string;
  database?: string;
  applicationName?: string;
  /** The identity's object id, for token logins. */
  objectId?: string;
  ssl: boolean;
}

export function sessionFields(f: Facts) {
  return { server: f.server, user: f.user, database: f.database, applicationName: f.applicationName, ...(f.objectId ? { objectId: f.objectId } : {}) };
}

/** What reporting needs of the gateway. */
export interface ReportEnv {
  readonly bus: { publish(event: GatewayEvent): void };
  readonly metrics: { readonly denied: { inc(labels: { reason: string }): void } };
  readonly log: { error(obj: object, msg: string): void };
}

/**
 * `withFields` false: refused before the connection was accepted (a PROXY header refused), so
 * the event carries no session fields.
 */
export function reportRefusal(g: ReportEnv, socket: Duplex, facts: Facts, r: Refusal, withFields = true): void {
  if (r.cause !== undefined) g.log.error({ err: r.cause, connId: facts.conn.connId }, 'gateway connection failed');
  const fields = withFields ? sessionFields(facts) : {};
  if (r.event === 'auth.failed') {
    g.bus.publish({
      type: 'auth.failed',
      time: now(),
      connection: facts.conn,
      ...fields,
      method: r.method ?? 'scram-sha-256',
      sqlstate: r.error.sqlstate,
      reason: r.reason,
    });
  } else {
    g.bus.publish({ type: 'connection.denied', time: now(), connection: facts.conn, ...fields, reason: r.reason, sqlstate: r.error.sqlstate, ssl: facts.ssl });
  }
  // One label for every failed authentication: the reason (unknown role, wrong password, bad
  // token) is in the audit event only, never in the metrics anyone with a token can read.
  if (!r.frame) g.metrics.denied.inc({ reason: r.event === 'auth.failed' ? 'auth-failed' : r.reason });
  if (r.frame) socket.end(r.frame);
  else if (r.silent) socket.destroy();
  else socket.end(errorResponse({ severity: 'FATAL', sqlstate: r.error.sqlstate, message: r.error.message }));
}

/** An error thrown by a step, as a refusal; null when the peer is gone (nothing to tell). */
export function failureRefusal(err: unknown): Refusal | null {
  if (err instanceof ProtocolError && closesWithoutMessage(err)) {
    // As PostgreSQL's ProcessStartupPacket: logged (here: the audit log), nothing sent.
    return refusal({ sqlstate: err.sqlstate, message: err.message }, 'invalid-startup-length', { silent: true });
  }
  if (err instanceof ProtocolError) return refusal({ sqlstate: err.sqlstate, message: err.message }, 'protocol-violation');
  if (err instanceof ConnectionClosed || isSocketError(err)) return null;
  return refusal({ sqlstate: 'XX000', message: 'internal error in the gateway' }, 'internal-error', { cause: err });
}

function isSocketError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('E') || code.startsWith('ERR_SSL') || code === 'ERR_STREAM_DESTROYED');
}
