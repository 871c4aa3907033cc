// The tamper-evident audit store: hash-chained records in append-only segments, signed Merkle
// checkpoints, verification. The on-disk format is described in FORMAT.md beside this file.
export { AuditStore, type AppendResult, type AuditStoreStats } from './store.js';
export { openAuditStore } from './open-store.js';
export type { AuditStoreOptions, Durability } from './options.js';
export type { RecoveryReport, TruncatedTail } from './recover.js';
export type { RetentionResult } from './retention.js';
export { verifyStore, type VerifyFailure, type VerifyOptions, type VerifyReason, type VerifyReport } from './verify.js';
export { readRecords, storeFileStream, type ReadRecordsOptions } from './read-records.js';
export type { AuditRecord } from './record.js';
export { type Checkpoint, checkpointSignatureValid } from './checkpoint.js';
export { exportCheckpoint, verifyExportedCheckpoint, EXPORT_FORMAT, type ExportedCheckpoint, type ExportedCheckpointCheck } from './checkpoint-export.js';
export { loadSigningKey, keyIdOf, publicKeyPem, type SigningKey } from './signing-key.js';
export { canonicalJson, type JsonObject, type JsonValue } from './canonical-json.js';
export { AuditWriteError, AuditCorruptError, AuditKeyError, AuditLockError, type AuditWriteReason } from './errors.js';
export type { AuditIo, AppendFile } from './io.js';
