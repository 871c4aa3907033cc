// Statement audit settings for a bench platform, through the REST API (as `pgwarden server audit
// update` does): PATCH /servers/{name}/auditSettings {classes}, then wait until the platform has
// them in force. The platform applies a settings change on its catalog snapshot update (the same
// snapshot the gateway reads at each session start), then writes the server's pgAudit
// configuration and reloads it; so once a fresh server session shows the new `pgaudit.log`, new
// gateway sessions get the new classes. Without pgAudit there is nothing to observe: a fixed wait.
import { readFileSync } from 'node:fs';
import { callApi, type ApiTarget } from '../../src/cli/api-client.js';
import type { ClientConfig } from '../../src/app/platform.js';
import { platformPaths } from '../../src/host/paths.js';
import type { ChildPlatform } from './child-platform.js';

export const ALL_CLASSES = ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC', 'MISC_SET'] as const;
export const DEFAULT_CLASSES = ['ROLE', 'DDL'] as const;

/** The Owner's API target, from the data dir's client.json (rewritten at every platform start). */
export function apiTarget(dataDir: string): ApiTarget {
  const cfg = JSON.parse(readFileSync(platformPaths(dataDir).clientConfig, 'utf8')) as ClientConfig;
  return { url: cfg.apiUrl, token: cfg.token, ca: readFileSync(cfg.caFile, 'utf8') };
}

/** pgAudit's `pgaudit.log` for these classes, as the platform writes it. */
export const pgauditLogValue = (classes: readonly string[]): string => (classes.length ? classes.map((c) => c.toLowerCase()).join(',') : 'none');

/** The server's current `pgaudit.log` in a new session, or null when pgAudit is not loaded. */
export async function currentPgauditLog(platform: ChildPlatform, id: number): Promise<string | null> {
  const [row] = await platform.call<{ v: string | null }[]>({ cmd: 'query', id, sql: "select current_setting('pgaudit.log', true) v" });
  return row?.v ?? null;
}

/** Sets the server's statement audit classes and returns once they are in force. */
export async function setAuditClasses(
  api: ApiTarget,
  platform: ChildPlatform,
  server: string,
  id: number,
  classes: readonly string[],
  timeoutMs = 15_000,
): Promise<void> {
  const got = await callApi<{ classes: string[] }>(api, 'PATCH', `/servers/${encodeURIComponent(server)}/auditSettings`, { classes });
  if (got.classes.join(',') !== classes.join(',')) throw new Error(`auditSettings: asked for [${classes.join(',')}], got [${got.classes.join(',')}]`);
  const want = pgauditLogValue(classes);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await currentPgauditLog(platform, id);
    if (v === null) {
      await new Promise((r) => setTimeout(r, 1000)); // no pgAudit: the snapshot update is all there is
      return;
    }
    if (v === want) return;
    if (Date.now() > deadline) throw new Error(`pgaudit.log is '${v}', not '${want}', ${timeoutMs} ms after the settings change`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Diagnostic only: pgAudit off on the server whatever the audit settings say (ALTER SYSTEM as the
 * maintenance superuser, which postgresql.auto.conf keeps over the platform's configuration), or
 * back under the platform's control with `null`. Returns once a new session shows the value.
 */
export async function overridePgauditLog(platform: ChildPlatform, id: number, value: 'none' | null, expectAfterReset?: string): Promise<void> {
  await platform.call({ cmd: 'query', id, sql: value === null ? 'alter system reset pgaudit.log' : `alter system set pgaudit.log = '${value}'` });
  await platform.call({ cmd: 'query', id, sql: 'select pg_reload_conf()' });
  const want = value ?? expectAfterReset;
  const deadline = Date.now() + 10_000;
  while (want !== undefined && (await currentPgauditLog(platform, id)) !== want) {
    if (Date.now() > deadline) throw new Error(`pgaudit.log is not '${want}' 10 s after ALTER SYSTEM`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
