// Whether the managed servers here get pgAudit and ext/pgwarden_audit (scripts/install-deps.sh
// installs both); tests of what they log skip without them.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pgauditAvailable } from '../../src/engine/server-libraries.js';
import { findPgBinaries } from '../../src/host/pg-binaries.js';

export function pgwardenAuditInstalled(): boolean {
  try {
    const binaries = findPgBinaries();
    return pgauditAvailable(binaries) && existsSync(path.join(binaries.libDir, 'pgwarden_audit.so'));
  } catch {
    return false;
  }
}
