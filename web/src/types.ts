// The API's resource shapes as the console reads them (src/control/routes/*.ts).
export interface Server {
  id: string;
  name: string;
  fullyQualifiedDomainName: string;
  administratorLogin: string;
  sslEnforcement: 'Enabled' | 'Disabled';
  minimalTlsVersion: 'TLS1_2' | 'TLS1_3' | 'TLSEnforcementDisabled';
  publicNetworkAccess: 'Enabled' | 'Disabled';
  passwordAuth: 'Enabled' | 'Disabled';
  poolMode: PoolMode;
  poolSize: number;
  state: string;
  version: string;
  createdAt: string;
  updatedAt: string;
}

export type PoolMode = 'none' | 'session' | 'transaction';

/** One pool of a server in the gateway (src/gateway/pool/types.ts PoolStats). */
export interface PoolStats {
  server: string;
  mode: PoolMode;
  user: string;
  database: string;
  clients: number;
  waiting: number;
  active: number;
  idle: number;
  opening: number;
  poolSize: number;
  waits: number;
  waitMs: number;
  opened: number;
  reused: number;
}

/** GET /servers/{name}/pool */
export interface ServerPool {
  server: string;
  poolMode: PoolMode;
  poolSize: number;
  pools: PoolStats[];
}

export interface FirewallRule {
  name: string;
  startIpAddress: string;
  endIpAddress: string;
  createdAt: string;
  updatedAt: string;
}

export interface VnetRule {
  name: string;
  virtualNetworkSubnetId: string;
  ignoreMissingVnetServiceEndpoint: boolean;
  state: string;
  updatedAt: string;
}

export interface PrivateEndpoint {
  name: string;
  privateEndpoint: { id: string; kind: string };
  status: 'Pending' | 'Approved' | 'Rejected' | 'Disconnected';
  description: string;
  updatedAt: string;
}

export interface VirtualNetwork {
  name: string;
  subnets: { id: string; name: string; addressPrefix: string; serviceEndpoint: boolean }[];
}

export interface AccessAnswer {
  allow: boolean;
  reason: string;
  rule?: string;
  subnet?: string;
  explanation?: string;
  error?: { sqlstate: string; message: string };
  listener: string;
  user: string;
  database: string;
  ssl: boolean;
}

export interface Alert {
  id: string;
  server: string;
  type: string;
  severity: 'Low' | 'Medium' | 'High';
  state: 'Active' | 'Resolved' | 'Dismissed';
  title: string;
  description: string;
  tactic: string;
  principal: string | null;
  sourceAddress: string | null;
  location: { kind: string; country: string | null; asn: number | null; organization: string | null } | null;
  firstSeen: string;
  lastSeen: string;
  count: number;
  evidence: Record<string, unknown>;
  recommendedAction: string;
  stateChangedBy?: string | null;
  stateChangedAt?: string | null;
}

export interface AlertPolicy {
  state: 'Enabled' | 'Disabled';
  disabledAlerts: string[];
  emailAddresses: string[];
  webhooks: { url: string }[];
  retentionDays: number;
  autoProtection: { state: 'Enabled' | 'Disabled'; [k: string]: unknown };
}

export interface Block {
  id: string;
  scope: 'address' | 'user-address';
  address: string;
  user: string | null;
  failures: number;
  until: string;
}

export interface AuditHit {
  seq: number;
  time: string;
  hash: string;
  event: Record<string, unknown>;
}

export const ALERT_TYPES = [
  'BruteForce',
  'HarmfulApplication',
  'PrincipalAnomaly',
  'GeoAnomaly',
  'NetworkAnomaly',
  'SuspiciousIp',
  'SqlInjection',
  'SqlInjectionVulnerability',
] as const;
/** Alerts about the platform itself (raised whatever the threat policy says): listed and filtered, not in the policy form. */
export const PLATFORM_ALERT_TYPES = ['EncryptionKeyUnavailable', 'AuditLogFailure'] as const;

/** GET /servers/{name}/keys: the key-encryption key in use and the server's encrypted volume. */
export interface KeyInUse {
  type: 'SystemManaged' | 'CustomerManaged';
  kekVersion: number;
  keyRef: string;
  pkcs11: { module: string; tokenLabel: string; keyLabel: string; keyId?: string } | null;
  status: 'Valid' | 'Unavailable';
  reason: string | null;
  lastValidatedAt: string | null;
  checkIntervalSeconds: number;
  /** null while the server has no volume recorded (yet). */
  volume: { backend: 'fscrypt' | 'gocryptfs' | string; sizeBytes: number; open: boolean } | null;
}

/** GET /servers/{name}/backups: one encrypted full base backup (src/control/routes/backups.ts). */
export interface Backup {
  id: string;
  /** Not sent by the API today: every backup it lists is a full base backup. */
  kind?: string;
  startTime: string;
  stopTime: string;
  sizeBytes: number;
  storedBytes: number;
  startLsn: string;
  stopLsn: string;
  timeline: number;
  cipher: string;
  kek: { provider: string; version: number };
}

/** A long-running operation (backup, restore) followed at GET /operations/{id}. */
export interface Operation {
  id: string;
  kind: string;
  target: string;
  status: 'Running' | 'Succeeded' | 'Failed';
  progress: { phase: 'backup' | 'wait-archive' | 'extract' | 'replay' | 'done'; done: number; total: number; unit: 'bytes' | 'wal-files' } | null;
  startedAt: string;
  endedAt: string | null;
  result: Record<string, unknown> | null;
  error: string | null;
}
