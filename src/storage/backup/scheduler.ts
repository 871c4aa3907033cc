// Scheduled full backups: per server an interval (default daily). `dueBackups` is the pure
// decision; `startBackupScheduler` is a small timer that asks it every tick and runs the due
// backups one server at a time, never two backups of the same server at once.
export const DEFAULT_BACKUP_INTERVAL_MS = 24 * 3600_000;

export interface ScheduledServer {
  readonly serverId: string;
  /** Default DEFAULT_BACKUP_INTERVAL_MS. */
  readonly intervalMs?: number;
  /** Servers that are stopped or have backups disabled are skipped. */
  readonly enabled?: boolean;
}

/** The servers whose last completed backup is older than their interval (or that have none), oldest first. */
export function dueBackups(now: Date, servers: readonly ScheduledServer[], lastBackups: ReadonlyMap<string, Date>): string[] {
  const due: { id: string; last: number }[] = [];
  for (const s of servers) {
    if (s.enabled === false) continue;
    const interval = s.intervalMs ?? DEFAULT_BACKUP_INTERVAL_MS;
    if (!(interval > 0)) throw new RangeError(`backup interval of server '${s.serverId}' must be positive`);
    const last = lastBackups.get(s.serverId)?.getTime() ?? -Infinity;
    if (now.getTime() - last >= interval) due.push({ id: s.serverId, last });
  }
  return due.sort((a, b) => a.last - b.last).map((d) => d.id);
}

export interface SchedulerOptions {
  readonly tickMs?: number;
  readonly servers: () => Promise<readonly ScheduledServer[]> | readonly ScheduledServer[];
  /** The stop time of each server's newest completed backup. */
  readonly lastBackups: () => Promise<ReadonlyMap<string, Date>> | ReadonlyMap<string, Date>;
  readonly runBackup: (serverId: string) => Promise<void>;
  readonly onError?: (serverId: string | null, err: Error) => void;
  readonly now?: () => Date;
}

export interface BackupScheduler {
  /** Runs one decision and the backups it makes due (what each tick does). */
  tick(): Promise<string[]>;
  stop(): Promise<void>;
}

export function startBackupScheduler(o: SchedulerOptions): BackupScheduler {
  let running: Promise<string[]> | null = null;
  let stopped = false;
  const tick = (): Promise<string[]> => {
    running ??= (async () => {
      const ran: string[] = [];
      try {
        const due = dueBackups((o.now ?? (() => new Date()))(), await o.servers(), await o.lastBackups());
        for (const id of due) {
          if (stopped) break;
          try {
            await o.runBackup(id);
            ran.push(id);
          } catch (err) {
            o.onError?.(id, err as Error);
          }
        }
      } catch (err) {
        o.onError?.(null, err as Error);
      }
      return ran;
    })().finally(() => (running = null));
    return running;
  };
  const timer = setInterval(() => void tick(), o.tickMs ?? 60_000);
  timer.unref();
  return {
    tick,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
