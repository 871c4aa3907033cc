// The alert types of SPEC.md §6: id, default severity, MITRE ATT&CK tactic and the action a
// reader of the alert should take. Detectors name a type and a variant; everything a human
// reads about an alert comes from here.

export const ALERT_TYPES = [
  'BruteForce',
  'HarmfulApplication',
  'PrincipalAnomaly',
  'GeoAnomaly',
  'NetworkAnomaly',
  'SuspiciousIp',
  'SqlInjection',
  'SqlInjectionVulnerability',
  // Not threat detections: the platform's own integrity problems, raised whatever the policy.
  'EncryptionKeyUnavailable',
  'AuditLogFailure',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
export type Severity = 'Low' | 'Medium' | 'High';

export interface AlertKind {
  readonly type: AlertType;
  readonly severity: Severity;
  readonly tactic: string;
  readonly title: string;
  readonly recommendedAction: string;
}

const kind = (type: AlertType, severity: Severity, tactic: string, title: string, recommendedAction: string): AlertKind => ({
  type,
  severity,
  tactic,
  title,
  recommendedAction,
});

/** Variants by name. Several share one type id (BruteForce: attempts, spraying, distributed,
 * success after brute force, brute force on a valid user). */
export const ALERT_KINDS = {
  bruteForce: kind(
    'BruteForce',
    'Medium',
    'Credential Access',
    'Brute force attempts',
    'Check whether the source address belongs to your organization. If not, block it with the firewall (remove the rule that admits it) and make sure the targeted roles have strong passwords or use token login.',
  ),
  bruteForceValidUser: kind(
    'BruteForce',
    'Medium',
    'Credential Access',
    'Brute force attempts on a valid user',
    'The targeted role exists. Rotate its password now, prefer token login for people, and restrict the firewall rules that admit the source address.',
  ),
  passwordSpraying: kind(
    'BruteForce',
    'Medium',
    'Credential Access',
    'Password spraying: failed logins for many users from one address',
    'Block the source address with the firewall and review which of the tried role names exist.',
  ),
  distributedBruteForce: kind(
    'BruteForce',
    'Medium',
    'Credential Access',
    'Distributed brute force: failed logins for one user from many addresses',
    "Rotate the targeted role's password, narrow the firewall rules, and consider disabling password login in favour of token login.",
  ),
  bruteForceSuccess: kind(
    'BruteForce',
    'High',
    'Credential Access',
    'Successful login after brute force attempts',
    'Treat the role as compromised: change its password (or revoke its token access), end its sessions, review what it did in the audit log since the login, and block the source address.',
  ),
  harmfulApplication: kind(
    'HarmfulApplication',
    'High',
    'Execution',
    'Login from a potentially harmful application',
    "An attack tool connected to the server. Verify with the role owner whether this was an authorized test; if not, change the role's password, end its sessions and block the source address.",
  ),
  principalAnomaly: kind(
    'PrincipalAnomaly',
    'Low',
    'Initial Access',
    'Login by a principal not seen recently on this server',
    "Confirm that the role owner expected this login. If not, change the role's password and review its activity in the audit log.",
  ),
  geoAnomaly: kind(
    'GeoAnomaly',
    'Medium',
    'Initial Access',
    'Login from an unusual location',
    "Confirm with the role owner that they signed in from this country. If not, change the role's password and block the source address.",
  ),
  networkAnomaly: kind(
    'NetworkAnomaly',
    'Medium',
    'Initial Access',
    'Login from an unusual network',
    "Confirm with the role owner that they signed in from this network (ASN). If not, change the role's password and block the source address.",
  ),
  suspiciousIp: kind(
    'SuspiciousIp',
    'Medium',
    'Initial Access',
    'Connection from a suspicious IP address',
    'The address is on a threat-intelligence or anonymizer list you configured. Remove any firewall rule that admits it and review the session in the audit log.',
  ),
  sqlInjection: kind(
    'SqlInjection',
    'High',
    'Initial Access',
    'Potential SQL injection',
    'An application sent a statement shaped like an injection. Find the code that builds this query and use bind parameters; review the audit log for what the statement returned or changed. `pgwarden threat sql-check` explains a verdict; if this statement is legitimate, silence its shape alone with `pgwarden server threat-protection update --sqli-allow <fingerprint>` (the fingerprint is in the evidence).',
  ),
  sqlInjectionVulnerability: kind(
    'SqlInjectionVulnerability',
    'Medium',
    'Initial Access',
    'Application produces malformed SQL: possible SQL injection vulnerability',
    'Bursts of syntax errors usually mean user input reaches SQL text unescaped. Find the query in the audit log and change it to use bind parameters.',
  ),
  keyUnavailable: kind(
    'EncryptionKeyUnavailable',
    'High',
    'Impact',
    'Customer-managed encryption key unavailable: server is Inaccessible',
    'The server was stopped and its volume locked because its key-encryption key cannot be used. Restore or re-enable the key in the HSM (or fix the token, PIN or module), then run `pgwarden server key revalidate --server <name>`. No data is lost.',
  ),
  auditLogFailure: kind(
    'AuditLogFailure',
    'High',
    'Defense Evasion',
    'The audit log cannot be written',
    'Under failOpen the platform keeps serving but events are not recorded; under failClosed new connections are refused. Free disk space on the audit volume or fix the audit directory: recording resumes by itself once the store can write, and an audit.interrupted event records the gap.',
  ),
} as const satisfies Record<string, AlertKind>;

export type AlertKindName = keyof typeof ALERT_KINDS;

export function isAlertType(s: string): s is AlertType {
  return (ALERT_TYPES as readonly string[]).includes(s);
}
