// What every managed server preloads, and the configuration that follows from it:
//   pgwarden_guard (PostgreSQL < 16), which keeps administrators from reaching the host and from
//   reading every table (pg_read_all_data: pg_authid's verifiers);
//   pgaudit, when installed, writing the server's own statement log (jsonlog) that the platform
//   joins to gateway sessions;
//   pgwarden_audit (ext/pgwarden_audit), loaded after pgaudit so its hooks run first, which
//   limits pgAudit to the statements the gateway cannot see (nested in functions, DO blocks,
//   triggers; fast-path calls, deferred triggers at COMMIT, input functions at Bind) in the
//   sessions the gateway opens, and marks forged "AUDIT: " messages (RAISE LOG) as not pgAudit's.
//   Without it pgAudit logs every statement too (correct, but slower) and the platform drops the
//   top-level ones.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PgBinaries } from '../host/pg-binaries.js';
import { guardSettings, GUARD_LIBRARY } from './guard.js';

export type ServerConfig = Record<string, string | number | boolean>;

/** The part of a server's audit settings (audit/settings.ts AuditSettings) that its pgAudit
 * configuration follows. Declared here because engine/ sits below audit/. */
export interface PgAuditSettings {
  readonly classes: readonly string[];
}

/** pgAudit classes of a server whose audit settings were not applied yet: the audit settings'
 * defaults (DEFAULT_AUDIT_SETTINGS; a unit test keeps the two equal). */
export const DEFAULT_PGAUDIT_SETTINGS: PgAuditSettings = { classes: ['ROLE', 'DDL'] };

export function pgauditAvailable(pg: PgBinaries): boolean {
  return existsSync(path.join(pg.libDir, 'pgaudit.so'));
}

export const NESTED_AUDIT_LIBRARY = 'pgwarden_audit';

/** Whether pgAudit logs, in gateway sessions, only statements nested in another (see above). */
export function nestedAuditOnly(pg: PgBinaries): boolean {
  return pgauditAvailable(pg) && existsSync(path.join(pg.libDir, `${NESTED_AUDIT_LIBRARY}.so`));
}

/** Whether the archive module (ext/pgwarden_archive, PostgreSQL 15+) is installed: WAL is then
 * archived by the archiver process itself instead of a process per segment (storage/backup/wal-archive.ts). */
export function archiveModuleAvailable(pg: PgBinaries): boolean {
  return existsSync(path.join(pg.libDir, 'pgwarden_archive.so'));
}

/** Settings fixed for the server's life (a change needs a restart). */
export function libraryConfig(pg: PgBinaries): ServerConfig {
  const libraries = platformLibraries(pg);
  return {
    ...(libraries.length ? { shared_preload_libraries: libraries.join(',') } : {}),
    // One JSON object per line: what the platform ingests (PostgreSQL 15+).
    log_destination: 'jsonlog',
    log_filename: 'postgresql-%Y-%m-%d',
  };
}

/** The platform's own preload libraries, in their order. */
export function platformLibraries(pg: PgBinaries): string[] {
  const audit = pgauditAvailable(pg) ? ['pgaudit', ...(nestedAuditOnly(pg) ? [NESTED_AUDIT_LIBRARY] : [])] : [];
  return [...(guardSettings(pg).shared_preload_libraries ? [GUARD_LIBRARY] : []), ...audit];
}

/** shared_preload_libraries with the owner's allowed libraries (server-parameters.ts) first and the
 * platform's last, in their order: the platform's hooks are installed last and so run first. */
export function preloadLibraries(pg: PgBinaries, owner: readonly string[]): string {
  const platform = platformLibraries(pg);
  return [...owner.filter((l) => !platform.includes(l)), ...platform].join(',');
}

/** Settings that follow the server's audit settings (applied with a reload). */
export function auditConfig(pg: PgBinaries, settings: PgAuditSettings): ServerConfig {
  if (!pgauditAvailable(pg)) return {};
  return {
    'pgaudit.log': settings.classes.length ? settings.classes.map((c) => c.toLowerCase()).join(',') : 'none',
    // Parameters are logged by the gateway, which redacts them as configured; pgAudit could not.
    'pgaudit.log_parameter': false,
    'pgaudit.log_relation': true,
    'pgaudit.log_catalog': false,
    'pgaudit.log_client': false,
  };
}
