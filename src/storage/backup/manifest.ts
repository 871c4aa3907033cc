// The manifest of a base backup (JSON, not secret): what it is, which WAL it needs, and its
// wrapped data key. Written after base.tar.pgwenc is durable: a backup without a manifest is
// incomplete and never used for a restore.
import { randomBytes } from 'node:crypto';
import type { BackupRepository } from './repository.js';
import { BACKUP_FORMAT_VERSION, type StoredWrappedKey } from './cipher.js';
import { BackupError, RepositoryObjectMissingError } from './errors.js';
import { readAll } from './stream-util.js';

export interface BackupManifest {
  readonly formatVersion: number;
  readonly backupId: string;
  readonly serverId: string;
  readonly label: string;
  readonly cipher: string;
  readonly timeline: number;
  readonly startLsn: string;
  readonly stopLsn: string;
  /** The first and the last WAL segment a restore of this backup needs. */
  readonly startWalFile: string;
  readonly stopWalFile: string;
  /** Wall clock before pg_basebackup started and after its end WAL segment was archived. */
  readonly startTime: string;
  readonly stopTime: string;
  readonly pgMajorVersion: number;
  /** Tar bytes pg_basebackup produced, and what the repository stores. */
  readonly plaintextBytes: number;
  readonly ciphertextBytes: number;
  readonly wrappedKey: StoredWrappedKey;
}

export const baseDataKey = (serverId: string, backupId: string) => `${serverId}/base/${backupId}/base.tar.pgwenc`;
export const manifestKey = (serverId: string, backupId: string) => `${serverId}/base/${backupId}/manifest.json`;

/** A sortable backup id: UTC time and a random suffix. */
export function newBackupId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export async function writeManifest(repo: BackupRepository, m: BackupManifest): Promise<void> {
  await repo.put(manifestKey(m.serverId, m.backupId), Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
}

export async function readManifest(repo: BackupRepository, serverId: string, backupId: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = (await readAll(await repo.get(manifestKey(serverId, backupId)), 1 << 20)).toString('utf8');
  } catch (err) {
    if (err instanceof RepositoryObjectMissingError) throw new BackupError(`Backup '${backupId}' of server '${serverId}' does not exist or is incomplete.`);
    throw err;
  }
  let m: BackupManifest;
  try {
    m = JSON.parse(text) as BackupManifest;
  } catch {
    throw new BackupError(`The manifest of backup '${backupId}' of server '${serverId}' is not valid JSON.`);
  }
  if (m.formatVersion !== BACKUP_FORMAT_VERSION) {
    throw new BackupError(`Backup '${backupId}' has format version ${m.formatVersion}; this pgwarden reads version ${BACKUP_FORMAT_VERSION}.`);
  }
  if (m.backupId !== backupId || m.serverId !== serverId) {
    throw new BackupError(`The manifest of backup '${backupId}' of server '${serverId}' names another backup or server.`);
  }
  return m;
}

/** Every complete backup of a server (with a readable manifest), oldest first by stop time. */
export async function listBackups(repo: BackupRepository, serverId: string): Promise<BackupManifest[]> {
  const objects = await repo.list(`${serverId}/base`);
  const ids = objects.map((o) => /^[^/]+\/base\/([^/]+)\/manifest\.json$/.exec(o.key)?.[1]).filter((x): x is string => !!x);
  const out: BackupManifest[] = [];
  for (const id of ids) {
    try {
      out.push(await readManifest(repo, serverId, id));
    } catch {
      /* unreadable manifests are not listed as usable backups */
    }
  }
  return out.sort((a, b) => Date.parse(a.stopTime) - Date.parse(b.stopTime));
}

/** Pure: the newest backup whose stop time is at or before `target` (any, when no target). */
export function chooseBackup(backups: readonly BackupManifest[], target: Date | null): BackupManifest | null {
  let best: BackupManifest | null = null;
  for (const b of backups) {
    const stop = Date.parse(b.stopTime);
    if (target && stop > target.getTime()) continue;
    if (!best || stop > Date.parse(best.stopTime)) best = b;
  }
  return best;
}
