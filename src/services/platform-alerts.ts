// What the platform says when one of its own parts fails: the audit log that cannot write (and
// the gap once it writes again), a customer key that was lost, a managed server that crashed or
// restarted. Each goes on the event bus; the first two also raise an alert on the server(s).
import { now, type EventBus } from '../events/bus.js';
import type { AuditFailurePolicy } from '../audit/audit-log.js';
import type { ThreatEngine } from '../threat/engine.js';
import type { ManagedServers } from '../engine/managed-servers.js';
import type { ServerRecord } from '../catalog/servers-repo.js';

/** The alerts' way to the threat engine: it starts after the audit log, so it may not be there yet. */
export type ThreatAlerts = () => Pick<ThreatEngine, 'platformAlert'> | undefined;

/** The audit log's onFailure and onRecovered. */
export class AuditFailureAlerts {
  /** The audit log cannot write since then. */
  private failure: { since: string; reason: string; rejected: number } | null = null;

  constructor(
    private readonly d: {
      readonly bus: EventBus;
      readonly threat: ThreatAlerts;
      readonly policy: AuditFailurePolicy;
      /** The store's directory (undefined before it is open). */
      auditDir(): string | undefined;
      /** Events the audit store refused so far (undefined before it is open). */
      rejected(): number | undefined;
      /** The servers an alert goes to (none before the catalog is read). */
      servers(): Iterable<string>;
    },
  ) {}

  /** The audit log stopped recording: a High alert on every server, whatever the threat policy. */
  failed(err: Error): void {
    const { policy } = this.d;
    this.failure = { since: now(), reason: err.message, rejected: this.d.rejected() ?? 0 };
    const effect =
      policy === 'failOpen'
        ? 'The platform keeps serving (failOpen), but events are not being recorded.'
        : 'New connections are refused (failClosed) until it can write again.';
    for (const server of this.d.servers()) {
      this.d.threat()?.platformAlert({
        kind: 'auditLogFailure',
        server,
        incidentKey: 'audit-log',
        principal: null,
        sourceAddress: null,
        description: `The platform's audit log cannot be written: ${err.message}. ${effect}`,
        evidence: { reason: err.message, policy, auditDir: this.d.auditDir() },
        count: 1,
        timeMs: Date.now(),
      });
    }
  }

  /** The audit log writes again: the gap goes on record (when, why, how many events were lost). */
  recovered(): void {
    const failure = this.failure;
    this.failure = null;
    if (!failure) return;
    this.d.bus.publish({
      type: 'audit.interrupted',
      time: now(),
      details: {
        from: failure.since,
        to: now(),
        reason: failure.reason,
        policy: this.d.policy,
        eventsLost: (this.d.rejected() ?? 0) - failure.rejected,
      },
    });
  }
}

/** A customer key was lost: the server is stopped and locked; say so everywhere. */
export function reportKeyLost(bus: EventBus, threat: ThreatAlerts, server: ServerRecord, reason: string): void {
  bus.publish({ type: 'server.inaccessible', time: now(), server: server.name, details: { reason } });
  threat()?.platformAlert({
    kind: 'keyUnavailable',
    server: server.name,
    incidentKey: 'kek',
    principal: null,
    sourceAddress: null,
    description: `The customer-managed key of server ${server.name} cannot be used: ${reason} The server was stopped and its volume locked; clients get SQLSTATE 08004.`,
    evidence: { reason },
    count: 1,
    timeMs: Date.now(),
  });
}

/** The managed servers' supervision events, on the bus under the servers' names. */
export function publishServerEvents(servers: ManagedServers, bus: EventBus, nameOf: (id: number) => string): void {
  servers.on('crashed', (id, info) => bus.publish({ type: 'server.crashed', time: now(), server: nameOf(id), details: { ...info } }));
  servers.on('restarted', (id) => bus.publish({ type: 'server.restarted', time: now(), server: nameOf(id) }));
  servers.on('dataRolesRevoked', (id, revoked) => bus.publish({ type: 'server.data_roles_revoked', time: now(), server: nameOf(id), details: { revoked } }));
  servers.on('restartFailed', (id, err) => bus.publish({ type: 'server.restart_failed', time: now(), server: nameOf(id), details: { error: err.message } }));
}
