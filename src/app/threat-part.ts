// Threat protection of a platform process: detectors over the event bus, alerts in the catalog,
// the gateway's throttle. Policies follow the snapshot.
import type pg from 'pg';
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import { ThreatRepo } from '../catalog/threat-repo.js';
import type { SnapshotStore } from '../catalog/snapshot.js';
import type { ThreatEngine } from '../threat/engine.js';
import { startThreatEngine } from '../threat/start.js';
import { webhookSecretAad } from '../threat/notify/index.js';
import type { Host } from './host.js';
import type { PlatformOptions } from './options.js';

export async function startThreat(
  options: PlatformOptions,
  host: Host,
  d: { bus: EventBus; log: Logger; db: pg.Pool; snapshots: SnapshotStore; consoleUrl: () => string },
): Promise<{ engine: ThreatEngine; repo: ThreatRepo }> {
  const repo = new ThreatRepo(d.db);
  const { snapshots } = d;
  const engine = await startThreatEngine({
    bus: d.bus,
    repo,
    log: d.log,
    policies: () => snapshots.snapshot.threat,
    serverId: (name) => snapshots.snapshot.servers.get(name)?.id,
    options: options.threat ?? {},
    consoleUrl: d.consoleUrl,
    openWebhookSecret: (stored, server, url) => host.webhookSecrets.open(stored, webhookSecretAad(server, url)),
  });
  snapshots.on('updated', (snap) => {
    for (const name of snap.servers.keys()) engine.policyChanged(name, snap.threat.get(name));
  });
  return { engine, repo };
}
