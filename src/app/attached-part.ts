// Attached servers (PostgreSQL an HA engine runs elsewhere) as a process that runs their relays
// sees them: one local relay socket per server to its current primary (engine/attached/),
// following the catalog, with the maintenance login opened from the catalog (sealed under the
// platform root's key). `up` runs these; so does a `pgwarden gateway` on another host (on the
// platform's host it uses the platform's relays: attached-lookup.ts).
import type { Logger } from 'pino';
import { now, type EventBus } from '../events/bus.js';
import { isAttached } from '../catalog/servers-repo.js';
import type { CatalogSnapshot, SnapshotStore } from '../catalog/snapshot.js';
import { AttachedServers, type AttachedSpec } from '../engine/attached/attached-servers.js';
import { endpointText, parseEndpoints } from '../engine/attached/endpoints.js';
import type { MaintenanceConnections } from '../engine/maintenance.js';
import { SecretSealer } from '../host/secrets.js';
import { maintenancePasswordAad } from '../services/server-service.js';
import type { Host } from './host.js';
import type { Part } from './parts.js';

export interface AttachedPart extends Part {
  readonly attached: AttachedServers;
  /** Seals a maintenance password for the catalog (the API's attach). */
  seal(password: string, server: string): string;
  /** Relays for the snapshot's attached servers, now (also on every snapshot update). */
  sync(): Promise<void>;
}

export function followAttached(
  host: Host,
  d: { readonly snapshots: SnapshotStore; readonly maintenance: MaintenanceConnections; readonly bus: EventBus; readonly log: Logger },
): AttachedPart {
  const sealer = new SecretSealer(host.kekRoot, 'attached-maintenance');
  const attached = new AttachedServers(host.paths.runDir);
  d.maintenance.useAttached(attached);
  const nameOf = (id: number) => [...d.snapshots.snapshot.servers.values()].find((s) => s.id === id)?.name ?? String(id);
  attached.on('failover', (id, from, to) =>
    d.bus.publish({ type: 'server.failover', time: now(), server: nameOf(id), details: { from: endpointText(from), to: endpointText(to) } }),
  );
  attached.on('unreachable', (id, err) => d.log.warn({ server: nameOf(id), err: err.message }, 'attached server: no primary reached'));
  let syncing: Promise<void> = Promise.resolve();
  const sync = () => {
    syncing = syncing
      .then(async () => {
        const specs = attachedSpecs(d.snapshots.snapshot, (sealed, name) => sealer.open(sealed, maintenancePasswordAad(name)), d.log);
        for (const s of specs) if (!attached.has(s.id)) await d.maintenance.closePool(s.id);
        await attached.sync(specs);
      })
      .catch((err: Error) => d.log.error({ err }, 'attached servers could not be brought in step with the catalog'));
    return syncing;
  };
  d.snapshots.on('updated', () => void sync());
  return {
    attached,
    seal: (password, server) => sealer.seal(password, maintenancePasswordAad(server)),
    sync,
    stop: () => attached.closeAll(),
  };
}

/** The snapshot's attached servers as relays need them; one whose password cannot be opened
 * (sealed by another platform key, altered) is left out and said so: it is refused, not guessed. */
function attachedSpecs(snap: CatalogSnapshot, open: (sealed: string, name: string) => string, log: Logger): AttachedSpec[] {
  const out: AttachedSpec[] = [];
  for (const s of snap.servers.values()) {
    if (!isAttached(s)) continue;
    const endpoints = parseEndpoints(s.endpoints ?? []);
    try {
      if (typeof endpoints === 'string') throw new Error(endpoints);
      if (!s.tlsCa || !s.maintenanceUser || !s.maintenancePasswordSealed) throw new Error('its attachment is incomplete');
      out.push({ id: s.id, name: s.name, endpoints, ca: s.tlsCa, user: s.maintenanceUser, password: open(s.maintenancePasswordSealed, s.name) });
    } catch (err) {
      log.error({ server: s.name, err: (err as Error).message }, 'attached server left unreachable');
    }
  }
  return out;
}
