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
  state: string;
  version: string;
  createdAt: string;
  updatedAt: string;
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

export const ALERT_TYPES = ['BruteForce', 'HarmfulApplication', 'PrincipalAnomaly', 'GeoAnomaly', 'NetworkAnomaly', 'SuspiciousIp', 'SqlInjection', 'SqlInjectionVulnerability'] as const;
