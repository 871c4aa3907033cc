// The attached servers as a gateway process that runs no relay of its own sees them (the
// gateway's other processes of `up --gateway-workers N`, a `pgwarden gateway` on the same host):
// the platform process's relay sockets on this host (run/a<id>), and each one's maintenance
// login, opened from the catalog the same way the platform process opens it.
import path from 'node:path';
import type { Logger } from 'pino';
import type { SnapshotStore } from '../catalog/snapshot.js';
import { isAttached } from '../catalog/servers-repo.js';
import { SecretSealer } from '../host/secrets.js';
import type { AttachedLookup } from '../engine/maintenance.js';
import { maintenancePasswordAad } from '../services/server-service.js';
import type { Host } from './host.js';

export function attachedFromCatalog(host: Host, snapshots: SnapshotStore, log: Logger): AttachedLookup {
  const sealer = new SecretSealer(host.kekRoot, 'attached-maintenance');
  const opened = new Map<string, string>();
  const record = (id: number) => {
    for (const s of snapshots.snapshot.servers.values()) if (s.id === id && isAttached(s)) return s;
    return null;
  };
  return {
    socketDir: (id) => (record(id) ? path.join(host.paths.runDir, `a${id}`) : null),
    credentials: (id) => {
      const s = record(id);
      if (!s?.maintenanceUser || !s.maintenancePasswordSealed) return null;
      let password = opened.get(s.maintenancePasswordSealed);
      if (password === undefined) {
        try {
          password = sealer.open(s.maintenancePasswordSealed, maintenancePasswordAad(s.name));
        } catch (err) {
          log.error({ server: s.name, err: (err as Error).message }, 'the maintenance password of an attached server could not be opened');
          return null;
        }
        opened.set(s.maintenancePasswordSealed, password);
      }
      return { user: s.maintenanceUser, password };
    },
  };
}
