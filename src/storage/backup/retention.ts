// Retention of a server's backups, in days. What is kept is what a point-in-time restore to any
// moment of the last N days needs: every backup that completed inside the window, plus the newest
// one that completed before it (the base for the window's first moments), and at least the
// newest backup in any case. WAL files older than the oldest kept backup's start are deleted
// (timeline history files are tiny and always kept). Backups that never completed (no manifest)
// are deleted once older than the window. Pure plan first, then the adapter that deletes.
import path from 'node:path';
import type { BackupRepository } from './repository.js';
import { listBackups, type BackupManifest } from './manifest.js';
import { segmentPosition } from './wal-names.js';

const DAY_MS = 24 * 3600_000;

export interface RetentionPlan {
  readonly keep: readonly BackupManifest[];
  readonly drop: readonly BackupManifest[];
  /** WAL files before this one (by position, any timeline) are no longer needed; null: keep all. */
  readonly oldestNeededWalFile: string | null;
}

export function planRetention(backups: readonly BackupManifest[], now: Date, days: number): RetentionPlan {
  if (!(days > 0)) throw new RangeError(`retention days must be positive, got ${days}`);
  const cutoff = now.getTime() - days * DAY_MS;
  const sorted = [...backups].sort((a, b) => Date.parse(a.stopTime) - Date.parse(b.stopTime));
  const inside = sorted.filter((b) => Date.parse(b.stopTime) >= cutoff);
  const before = sorted.filter((b) => Date.parse(b.stopTime) < cutoff);
  const keep = [...(before.length ? [before.at(-1)!] : []), ...inside];
  const keepIds = new Set(keep.map((b) => b.backupId));
  return {
    keep,
    drop: sorted.filter((b) => !keepIds.has(b.backupId)),
    oldestNeededWalFile: keep.length ? keep[0]!.startWalFile : null,
  };
}

/** Pure: which archived WAL file names can go, given the oldest one still needed. */
export function walFilesToDelete(names: readonly string[], oldestNeeded: string | null): string[] {
  if (oldestNeeded === null) return [];
  const limit = segmentPosition(oldestNeeded);
  if (limit === null) return [];
  return names.filter((n) => {
    if (n.endsWith('.history')) return false;
    const pos = segmentPosition(n);
    return pos !== null && pos < limit;
  });
}

export interface RetentionResult {
  readonly deletedBackups: string[];
  readonly deletedWalFiles: string[];
  readonly deletedIncomplete: string[];
}

export async function applyRetention(o: { repo: BackupRepository; serverId: string; days: number; now?: Date }): Promise<RetentionResult> {
  const now = o.now ?? new Date();
  const backups = await listBackups(o.repo, o.serverId);
  const plan = planRetention(backups, now, o.days);
  const deletedBackups: string[] = [];
  for (const b of plan.drop) {
    // Manifest first: a backup without one is never offered for a restore.
    await o.repo.delete(`${o.serverId}/base/${b.backupId}/manifest.json`);
    await o.repo.delete(`${o.serverId}/base/${b.backupId}/base.tar.pgwenc`);
    deletedBackups.push(b.backupId);
  }
  const cutoff = now.getTime() - o.days * DAY_MS;
  const complete = new Set(backups.map((b) => b.backupId));
  const deletedIncomplete: string[] = [];
  for (const obj of await o.repo.list(`${o.serverId}/base`)) {
    const id = obj.key.split('/')[2]!;
    if (complete.has(id) || obj.modified.getTime() >= cutoff) continue;
    await o.repo.delete(obj.key);
    if (!deletedIncomplete.includes(id)) deletedIncomplete.push(id);
  }
  const wal = (await o.repo.list(`${o.serverId}/wal`)).filter((x) => !x.key.includes('/wal/keys/'));
  const names = wal.map((x) => path.basename(x.key).replace(/\.pgwenc$/, ''));
  const deletedWalFiles = walFilesToDelete(names, plan.oldestNeededWalFile);
  for (const n of deletedWalFiles) await o.repo.delete(`${o.serverId}/wal/${n}.pgwenc`);
  return { deletedBackups, deletedWalFiles, deletedIncomplete };
}
