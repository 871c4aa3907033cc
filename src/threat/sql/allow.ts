// Per-shape exclusions of the SQL-injection detector: `SqlInjection:<fingerprint>` entries in a
// policy's disabledAlerts (`pgwarden server threat-protection update --sqli-allow FINGERPRINT`)
// silence one known statement shape without turning the detector off.

export const SQLI_ALLOW_PREFIX = 'SqlInjection:';
export type SqliAllowEntry = `SqlInjection:${string}`;
/** A fingerprint as alerts and `threat sql-check` show it: 16 hex digits. */
export const FINGERPRINT_PATTERN = /^[0-9a-f]{16}$/;

export function sqliAllowEntry(fingerprint: string): SqliAllowEntry {
  return `${SQLI_ALLOW_PREFIX}${fingerprint.toLowerCase()}`;
}

export function isSqliAllowEntry(s: string): s is SqliAllowEntry {
  return s.startsWith(SQLI_ALLOW_PREFIX) && FINGERPRINT_PATTERN.test(s.slice(SQLI_ALLOW_PREFIX.length));
}

/** True when the policy silences SqlInjection alerts of this statement shape. */
export function sqliAllowed(p: { readonly disabledAlerts: readonly string[] }, fingerprint: string): boolean {
  return p.disabledAlerts.length > 0 && p.disabledAlerts.includes(sqliAllowEntry(fingerprint));
}
