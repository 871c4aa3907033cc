// Errors of the backup subsystem: each says what failed, for which server/backup, and what to do.
export class BackupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackupError';
  }
}

/** The ciphertext of a backup or WAL segment failed authentication: altered, truncated or swapped. */
export class BackupTamperedError extends BackupError {
  constructor(
    readonly object: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`Backup data '${object}' failed authentication: its ciphertext was altered, truncated or swapped (${detail}). Refusing to restore from it.`, options);
    this.name = 'BackupTamperedError';
  }
}

/** No completed base backup of the server is old enough for the requested point in time. */
export class NoBackupBeforeError extends BackupError {
  constructor(serverId: string, time: Date | null) {
    super(time ? `No backup of server '${serverId}' completed before ${time.toISOString()}.` : `No backup of server '${serverId}' exists.`);
    this.name = 'NoBackupBeforeError';
  }
}

export class RepositoryObjectMissingError extends BackupError {
  constructor(readonly key: string) {
    super(`The backup repository has no object '${key}'.`);
    this.name = 'RepositoryObjectMissingError';
  }
}

export class InvalidRepositoryKeyError extends BackupError {
  constructor(key: string) {
    super(`Invalid backup repository key '${key}': use '/'-separated names of letters, digits, '.', '_' and '-'.`);
    this.name = 'InvalidRepositoryKeyError';
  }
}

/** The archive of a base backup is not a well-formed tar, or holds an entry we refuse to write. */
export class BackupArchiveFormatError extends BackupError {
  constructor(detail: string) {
    super(`The base backup archive is malformed: ${detail}.`);
    this.name = 'BackupArchiveFormatError';
  }
}

/** Point-in-time recovery did not finish: PostgreSQL stopped, or the target was not reached. */
export class RecoveryFailedError extends BackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecoveryFailedError';
  }
}
