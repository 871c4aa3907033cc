// The audit log's failure raises an alert on every server (whatever the threat policy); its
// recovery puts the gap on record with the events lost; a lost customer key is an event and an alert.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus } from '../../../src/events/bus.js';
import type { AnyEvent } from '../../../src/events/types.js';
import type { Finding } from '../../../src/threat/finding.js';
import type { ServerRecord } from '../../../src/catalog/servers-repo.js';
import { AuditFailureAlerts, reportKeyLost } from '../../../src/services/platform-alerts.js';

function recorder(): { bus: EventBus; events: AnyEvent[]; findings: Finding[]; threat: () => { platformAlert(f: Finding): void } } {
  const bus = new EventBus();
  const events: AnyEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const findings: Finding[] = [];
  return { bus, events, findings, threat: () => ({ platformAlert: (f: Finding) => void findings.push(f) }) };
}

it('audit log failure: a High alert per server; recovery: the gap with the events lost', () => {
  const r = recorder();
  let rejected = 3;
  const alerts = new AuditFailureAlerts({
    bus: r.bus,
    threat: r.threat,
    policy: 'failClosed',
    auditDir: () => '/x/audit',
    rejected: () => rejected,
    servers: () => ['a', 'b'],
  });
  alerts.failed(new Error('disk full'));
  assert.deepEqual(
    r.findings.map((f) => [f.kind, f.server, f.incidentKey]),
    [
      ['auditLogFailure', 'a', 'audit-log'],
      ['auditLogFailure', 'b', 'audit-log'],
    ],
  );
  assert.equal(
    r.findings[0]!.description,
    "The platform's audit log cannot be written: disk full. New connections are refused (failClosed) until it can write again.",
  );
  rejected = 10;
  alerts.recovered();
  assert.equal(r.events.length, 1);
  const e = r.events[0] as AnyEvent & { details: Record<string, unknown> };
  assert.equal(e.type, 'audit.interrupted');
  assert.equal(e.details.eventsLost, 7);
  assert.equal(e.details.reason, 'disk full');
  alerts.recovered(); // no failure open: nothing more on record
  assert.equal(r.events.length, 1);
});

it('audit log failure before the threat engine runs raises nothing and does not throw', () => {
  const r = recorder();
  const alerts = new AuditFailureAlerts({
    bus: r.bus,
    threat: () => undefined,
    policy: 'failOpen',
    auditDir: () => '/x',
    rejected: () => undefined,
    servers: () => ['a'],
  });
  alerts.failed(new Error('queue full'));
  assert.equal(r.findings.length, 0);
});

it('a lost customer key: server.inaccessible and a keyUnavailable alert', () => {
  const r = recorder();
  reportKeyLost(r.bus, r.threat, { name: 'db1' } as ServerRecord, 'the token is gone.');
  assert.equal(r.events[0]!.type, 'server.inaccessible');
  assert.equal(r.findings[0]!.kind, 'keyUnavailable');
  assert.match(r.findings[0]!.description, /^The customer-managed key of server db1 cannot be used: the token is gone\. The server was stopped/);
});
