// What `pgwarden up` and `pgwarden gateway` are started with (up-run.ts builds it from the flags;
// tests and benchmarks build it directly).
import type { AuditFailurePolicy } from '../audit/audit-log.js';
import type { GatewayLimits } from '../gateway/context.js';
import type { SmtpSettings } from '../threat/start.js';
import type { BackendName } from '../storage/volumes/index.js';
import { platformDefaults, type PlatformDefaults } from '../host/defaults.js';

/** The six with defaults (dataDir, domain, gatewayPort, gatewayHosts, apiPort, apiHost) are
 * declared in defaults.ts, which the CLI reads without loading the platform. */
export interface PlatformOptions extends PlatformDefaults {
  readonly catalogUrl?: string;
  readonly logLevel?: string;
  /** The operator's own gateway certificate and key (PEM files) instead of one from the platform CA. */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  /** A listener for connections through load balancers (PROXY protocol required, only from
   * these CIDRs): private endpoints identify themselves with Azure LinkID or AWS VPCE TLVs. */
  readonly privateLink?: { readonly hosts: readonly string[]; readonly port: number; readonly loadBalancers: readonly string[] };
  /** strict: every audit record is on disk before the session goes on; batched: written at once, synced every 200 ms. */
  readonly auditDurability?: 'strict' | 'batched';
  /** failClosed (default): new connections are refused while the audit log cannot be written. */
  readonly auditFailurePolicy?: AuditFailurePolicy;
  /** Gateway processes sharing the listeners (`up --gateway-workers N`): the platform's own and
   * N-1 more. Default 1 here (the CLI's default is the number of cores). */
  readonly gatewayWorkers?: number;
  /** The relay of sessions (`up --relay`): native (the Rust addon terminates TLS and relays on its
   * own threads; transaction-mode sessions stay on the JavaScript relay) or js. Unset:
   * PGWARDEN_RELAY, else native when the addon loads (else js, with a warning). */
  readonly relay?: 'js' | 'native';
  /** `--relay-threads N`: the native relay's threads in each gateway process. Unset: the cores
   * shared out among the gateway processes (see relayThreads). */
  readonly relayThreads?: number;
  /** `up --quiet-statements`: 'off' makes the native relay hand every statement to the session's
   * observer (no quiet statements, see gateway/native/addon.ts RelayOptions.quietSet). Default on. */
  readonly quietStatements?: 'on' | 'off';
  /** Gateway bounds: handshake and auth timeouts, sessions per server, startup packet size. */
  readonly gatewayLimits?: Partial<GatewayLimits>;
  /** Threat protection: the SMTP server alerts are e-mailed through, the operator's lists of
   * suspicious addresses (one address or CIDR per line; reloaded when they change), and the
   * country/network database (on by default; `false` turns the location detectors off). */
  readonly threat?: ThreatOptions;
  /** The backup repository (default `<data dir>/backups`). */
  readonly backupDir?: string;
  /** Storage encryption backend for new volumes: fscrypt when it works here, else gocryptfs. */
  readonly volumeBackend?: BackendName | 'auto';
  /** Size of each new server volume (a sparse image with fscrypt), default 16 GiB. */
  readonly volumeSizeBytes?: number;
  /** Full backups of every Ready server at this interval (default daily; 0 turns the schedule off). */
  readonly backupIntervalMs?: number;
  /** How often the schedule looks for due backups (default 60 s). */
  readonly backupScheduleTickMs?: number;
  /** Backups and WAL older than this are deleted after each scheduled backup (default 7). */
  readonly backupRetentionDays?: number;
  /** How often customer-managed keys are checked (default 30 s). */
  readonly keyCheckIntervalMs?: number;
  /** Refuse to start unless OpenSSL's FIPS provider is active (crypto.setFips(true)). */
  readonly fips?: boolean;
  /** PKCS#11 modules customer keys may use, NAME → PATH (`up --pkcs11-module NAME=PATH`), besides
   * those in the root-owned /etc/pgwarden/pkcs11-modules.json and <data dir>/pkcs11-modules.json. */
  readonly pkcs11Modules?: Readonly<Record<string, string>>;
}

export interface ThreatOptions {
  readonly smtp?: SmtpSettings;
  readonly ipLists?: readonly string[];
  readonly geoIp?: boolean;
}

export const defaultOptions: PlatformOptions = platformDefaults;

/** What `up` writes for the CLI (0600): the API's address, the Owner token, the CA to trust. */
export interface ClientConfig {
  apiUrl: string;
  token: string;
  caFile: string;
}
