// Whether the managed servers here get pgAudit and ext/pgwarden_audit (scripts/install-deps.sh
// installs both); tests of what they log skip without them.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pgauditAvailable } from '../../src/engine/server-libraries.js';
import { findPgBinaries } from '../../src/host/pg-binaries.js';
import { auditEvents, until, type TestPlatform } from './platform.js';

export function pgwardenAuditInstalled(): boolean {
  try {
    const binaries = findPgBinaries();
    return pgauditAvailable(binaries) && existsSync(path.join(binaries.libDir, 'pgwarden_audit.so'));
  } catch {
    return false;
  }
}

/** The `statement.pgaudit` event of a nested `insert ... values (v)`, once the platform has it. */
export function nestedInsertLine<L extends { statement: string }>(t: TestPlatform, v: number): Promise<L> {
  return until(
    `the nested insert of ${v}`,
    async () => auditEvents<L & { type: string }>(t).find((e) => e.type === 'statement.pgaudit' && e.statement.includes(`values (${v})`)),
    15_000,
    100,
  );
}
