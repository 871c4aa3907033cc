// Scheduled full backups and retention for the servers of this host: every Ready server gets a
// full backup when its newest one is older than the interval (default daily; a new server gets
// its first one at the next tick), and after each backup the server's backups and WAL older than
// the retention (default 7 days, always keeping what the oldest kept backup needs) are deleted.
import { applyRetention, listBackups, startBackupScheduler, type BackupRepository, type BackupScheduler } from '../storage/backup/index.js';
import type { ServersRepo } from '../catalog/servers-repo.js';
import type { ServerService } from './server-service.js';

export const DEFAULT_BACKUP_RETENTION_DAYS = 7;

export interface BackupScheduleOptions {
  readonly intervalMs: number;
  readonly retentionDays: number;
  readonly tickMs?: number;
}

export function scheduleBackups(
  o: BackupScheduleOptions,
  deps: {
    servers: ServersRepo;
    service: ServerService;
    repo: BackupRepository;
    hostId: string;
    onError: (err: Error, server: string | null) => void;
    onBackup?: (server: string) => void;
  },
): BackupScheduler {
  const names = new Map<string, string>();
  return startBackupScheduler({
    tickMs: o.tickMs ?? 60_000,
    servers: async () => {
      // The engine that runs an attached server backs it up.
      const list = (await deps.servers.list()).filter((s) => s.hostId === deps.hostId && s.mode !== 'attached');
      for (const s of list) names.set(String(s.id), s.name);
      return list.map((s) => ({ serverId: String(s.id), intervalMs: o.intervalMs, enabled: s.state === 'Ready' }));
    },
    lastBackups: async () => {
      const last = new Map<string, Date>();
      for (const id of names.keys()) {
        const newest = (await listBackups(deps.repo, id)).at(-1);
        if (newest) last.set(id, new Date(newest.stopTime));
      }
      return last;
    },
    runBackup: async (id) => {
      const name = names.get(id);
      if (!name) return;
      await deps.service.backup(name);
      await applyRetention({ repo: deps.repo, serverId: id, days: o.retentionDays });
      deps.onBackup?.(name);
    },
    onError: (id, err) => deps.onError(err, id === null ? null : (names.get(id) ?? id)),
  });
}
