// The public surface of pgwarden's encrypted backups, for the platform to wire in: repository,
// base backup, WAL archive agent and its settings, point-in-time restore, retention, schedule.
export { DirectoryRepository, type BackupRepository, type ObjectInfo } from './repository.js';
export { createBaseBackup, type BaseBackupOptions } from './base-backup.js';
export { listBackups, readManifest, chooseBackup, type BackupManifest } from './manifest.js';
export {
  startArchiveAgent,
  walArchiveSettings,
  restoreSettings,
  replicationHbaLine,
  archiveClientPath,
  type ArchiveAgent,
  type ArchiveAgentOptions,
  type ArchiveAgentEvent,
} from './wal-archive.js';
export { restoreToPointInTime, type RestoreOptions, type RestoreResult } from './restore.js';
export { applyRetention, planRetention, type RetentionPlan, type RetentionResult } from './retention.js';
export { dueBackups, startBackupScheduler, DEFAULT_BACKUP_INTERVAL_MS, type ScheduledServer, type BackupScheduler } from './scheduler.js';
export { formatProgress, type BackupProgress, type ProgressFn } from './progress.js';
export { defaultKeyAad, type KeyAadFor } from './cipher.js';
export * from './errors.js';
export { rewrapBackupKeys } from './rewrap.js';
