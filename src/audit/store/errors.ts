// Error classes of the audit store. Each carries a machine-readable reason; messages name files
// and sequence numbers, never event contents or key material.

export type AuditWriteReason =
  | 'io' // the file system refused a write, fsync or truncate (ENOSPC, EIO, EDQUOT, ...)
  | 'closed' // append after close()
  | 'queue-full' // more than maxPendingRecords appends waiting for the writer
  | 'invalid-event'; // not a JSON object, a bigint, a cycle, too deep, or over maxRecordBytes

/** Why `append` (or `checkpoint`) rejected. With reason 'io' the store reports healthy=false. */
export class AuditWriteError extends Error {
  override readonly name = 'AuditWriteError';
  readonly reason: AuditWriteReason;
  /** The system error code behind an 'io' failure, e.g. 'ENOSPC'. */
  readonly errno: string | undefined;

  constructor(reason: AuditWriteReason, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.reason = reason;
    this.errno = systemCode(cause);
  }
}

/** The store's files are not in a state it can safely continue from (opening refuses). */
export class AuditCorruptError extends Error {
  override readonly name = 'AuditCorruptError';
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, file?: string, line?: number) {
    super(message);
    this.file = file;
    this.line = line;
  }
}

/** The signing key file is missing, unreadable, too widely readable, or not Ed25519. */
export class AuditKeyError extends Error {
  override readonly name = 'AuditKeyError';
}

/** Another live writer holds the store directory. */
export class AuditLockError extends Error {
  override readonly name = 'AuditLockError';
}

export function systemCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}
