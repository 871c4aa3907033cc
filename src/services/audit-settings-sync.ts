// Statement-audit settings follow the catalog: each server on this host gets its pgAudit
// configuration whenever its settings in the snapshot change (and once at start).
import type { Logger } from 'pino';
import type { SnapshotStore } from '../catalog/snapshot.js';
import type { ManagedServers } from '../engine/managed-servers.js';

export class AuditSettingsSync {
  /** What each server was last given, so an unchanged snapshot costs nothing. */
  private readonly applied = new Map<number, string>();

  constructor(private readonly d: { readonly snapshots: SnapshotStore; readonly servers: ManagedServers; readonly hostId: string; readonly log: Logger }) {}

  /** Brings every server's pgAudit configuration in line with its audit settings. */
  async apply(): Promise<void> {
    const snap = this.d.snapshots.snapshot;
    for (const server of snap.servers.values()) {
      // An attached cluster's pgAudit is configured by the engine that runs it.
      if (server.hostId !== this.d.hostId || server.mode === 'attached') continue;
      const settings = snap.audit.get(server.name);
      if (!settings) continue;
      const key = JSON.stringify(settings);
      if (this.applied.get(server.id) === key) continue;
      this.applied.set(server.id, key);
      await this.d.servers
        .applyAuditSettings(server.id, settings)
        .catch((err: Error) => this.d.log.error({ err, server: server.name }, 'could not apply audit settings'));
    }
  }
}
