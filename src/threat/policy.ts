// A server's security alert policy (SPEC.md §2 securityAlertPolicy) with the detectors' and the
// automatic protection's parameters. Off by default, as in the reference service; the automatic
// protection is on by default and works whether alerts are on or not.
import type { AlertType } from './alert-types.js';
import type { SqliAllowEntry } from './sql/allow.js';

export interface Webhook {
  readonly url: string;
  /** HMAC-SHA256 key for the signature header, as the catalog holds it: sealed (platform/secrets.ts
   * SecretSealer, bound to the server and URL) and opened only to sign a delivery. Never shown by the API. */
  readonly secret: string;
}

export interface AutoProtection {
  readonly state: 'Enabled' | 'Disabled';
  /** Failed logins of one user from one address before that pair is throttled. */
  readonly userAddressFailures: number;
  /** Failed logins from one address (any users) before the address is throttled. */
  readonly addressFailures: number;
  /** Failures older than this are forgotten. */
  readonly windowSeconds: number;
  /** First block; each further block doubles, up to maxBlockSeconds. */
  readonly baseBlockSeconds: number;
  readonly maxBlockSeconds: number;
}

export interface DetectorSettings {
  /** Failed logins from one address in the window before a BruteForce alert. */
  readonly bruteForceFailures: number;
  readonly bruteForceWindowSeconds: number;
  /** Distinct users tried from one address in the window: password spraying. */
  readonly sprayUsers: number;
  /** Distinct addresses failing for one user in the window: distributed brute force. */
  readonly distributedAddresses: number;
  /** A principal not seen for this many days is anomalous. */
  readonly principalAnomalyDays: number;
  /** After the policy is enabled, the principal and location detectors only learn this long. */
  readonly learningPeriodSeconds: number;
  /** Syntax errors (42601) from one (role, application) in the window: injection vulnerability. */
  readonly syntaxErrorBurst: number;
  readonly syntaxErrorWindowSeconds: number;
}

export interface SecurityAlertPolicy {
  readonly state: 'Enabled' | 'Disabled';
  /** Alert types not raised, and per-shape SQL-injection exclusions (`SqlInjection:<fingerprint>`). */
  readonly disabledAlerts: readonly (AlertType | SqliAllowEntry)[];
  readonly emailAddresses: readonly string[];
  readonly webhooks: readonly Webhook[];
  /** Days alerts are kept. */
  readonly retentionDays: number;
  readonly autoProtection: AutoProtection;
  readonly detectors: DetectorSettings;
  /** When the policy was last turned on: the learning period starts here. */
  readonly enabledAt: string | null;
}

export const DEFAULT_AUTO_PROTECTION: AutoProtection = {
  state: 'Enabled',
  userAddressFailures: 5,
  addressFailures: 20,
  windowSeconds: 900,
  baseBlockSeconds: 30,
  maxBlockSeconds: 900,
};

export const DEFAULT_DETECTORS: DetectorSettings = {
  bruteForceFailures: 10,
  bruteForceWindowSeconds: 300,
  sprayUsers: 5,
  distributedAddresses: 10,
  principalAnomalyDays: 60,
  learningPeriodSeconds: 7 * 24 * 3600,
  syntaxErrorBurst: 10,
  syntaxErrorWindowSeconds: 60,
};

export const DEFAULT_POLICY: SecurityAlertPolicy = {
  state: 'Disabled',
  disabledAlerts: [],
  emailAddresses: [],
  webhooks: [],
  retentionDays: 90,
  autoProtection: DEFAULT_AUTO_PROTECTION,
  detectors: DEFAULT_DETECTORS,
  enabledAt: null,
};

/** A stored policy merged over the defaults, so settings added later get their defaults. */
export function withDefaults(stored: Partial<SecurityAlertPolicy> | null | undefined): SecurityAlertPolicy {
  if (!stored) return DEFAULT_POLICY;
  return {
    ...DEFAULT_POLICY,
    ...stored,
    autoProtection: { ...DEFAULT_POLICY.autoProtection, ...(stored.autoProtection ?? {}) },
    detectors: { ...DEFAULT_POLICY.detectors, ...(stored.detectors ?? {}) },
  };
}

/** The policy the API shows: webhook secrets left out. */
export function policyView(p: SecurityAlertPolicy) {
  return {
    state: p.state,
    disabledAlerts: [...p.disabledAlerts],
    emailAddresses: [...p.emailAddresses],
    webhooks: p.webhooks.map((w) => ({ url: w.url })),
    retentionDays: p.retentionDays,
    autoProtection: { ...p.autoProtection },
    detectors: { ...p.detectors },
    enabledAt: p.enabledAt,
  };
}

/** True when alerts of this type are raised for the server. */
export function alertsOn(p: SecurityAlertPolicy, type: AlertType): boolean {
  return p.state === 'Enabled' && !p.disabledAlerts.includes(type);
}

/** Whether the learning period is over at `nowMs`. */
export function learned(p: SecurityAlertPolicy, nowMs: number): boolean {
  if (!p.enabledAt) return false;
  return nowMs >= Date.parse(p.enabledAt) + p.detectors.learningPeriodSeconds * 1000;
}
