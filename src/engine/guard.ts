// Before PostgreSQL 16, a CREATEROLE administrator can grant himself pg_execute_server_program
// and reach the host, or pg_read_all_data and read pg_authid's verifiers. Managed servers on those
// versions preload pgwarden_guard (ext/pgwarden_guard), which refuses that; without it the
// platform creates no server.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PgBinaries } from '../host/pg-binaries.js';

export const GUARD_LIBRARY = 'pgwarden_guard';

/** Settings a managed server needs for the guard: none from PostgreSQL 16 on. */
export function guardSettings(pg: PgBinaries): Record<string, string> {
  if (pg.majorVersion >= 16) return {};
  if (!existsSync(path.join(pg.libDir, `${GUARD_LIBRARY}.so`))) {
    throw new Error(
      `PostgreSQL ${pg.majorVersion} needs the ${GUARD_LIBRARY} library, which keeps server administrators from ` +
        'granting themselves host access, and it is not installed: run scripts/install-deps.sh (it builds ext/pgwarden_guard).',
    );
  }
  return { shared_preload_libraries: GUARD_LIBRARY };
}
