// Plain facts for the check tests: a server record, a routed connection and a gateway
// environment, all in memory.
import type { ServerRecord } from '../../../../src/catalog/servers-repo.js';
import type { Admission, CheckEnv } from '../../../../src/gateway/checks/admission.js';
import type { NetworkView, PrivateEndpointIdentity } from '../../../../src/gateway/network-stage.js';
import type { NetworkSnapshot } from '../../../../src/network/decide.js';
import { formatIp } from '../../../../src/network/address.js';
import { SessionLimiter } from '../../../../src/gateway/session-limiter.js';

export function server(over: Partial<ServerRecord> = {}): ServerRecord {
  return {
    id: 1,
    name: 'demo',
    administratorLogin: 'demoadmin',
    sslEnforcement: 'Enabled',
    minimalTlsVersion: 'TLS1_2',
    publicNetworkAccess: 'Enabled',
    passwordAuth: 'Enabled',
    poolMode: 'none',
    poolSize: 20,
    state: 'Ready',
    hostId: 'local',
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...over,
  };
}

export function admission(over: Partial<Admission> = {}): Admission {
  return {
    server: server(),
    user: 'alice',
    database: 'app',
    forward: new Map([
      ['user', 'alice'],
      ['database', 'app'],
    ]),
    clientAddress: '203.0.113.7',
    listener: { kind: 'public' },
    endpoint: null,
    tlsVersion: 'TLSv1.3',
    ...over,
  };
}

/** A firewall that admits exactly the addresses listed. */
export function networkOf(rules: Record<string, Partial<NetworkSnapshot> & { allow?: string[] }>): NetworkView {
  const servers = new Map<string, NetworkSnapshot>();
  for (const [name, r] of Object.entries(rules)) {
    const allowed = new Set(r.allow ?? []);
    servers.set(name, {
      publicNetworkAccess: r.publicNetworkAccess ?? 'Enabled',
      firewall: { match: (ip) => (allowed.has(typeof ip === 'string' ? ip : formatIp(ip)) ? 'rule-1' : null) },
      vnetRules: r.vnetRules ?? [],
      privateEndpoints: r.privateEndpoints ?? new Map(),
    });
  }
  return { servers, vnets: new Map() };
}

export interface FakeEnv extends CheckEnv {
  auditAccepts: boolean;
  view: NetworkView;
  blocked: Set<string>;
  readonly pending: { server: string; endpoint: PrivateEndpointIdentity }[];
  readonly limiter: SessionLimiter;
}

export function env(over: { maxPerServer?: number; view?: NetworkView } = {}): FakeEnv {
  const limiter = new SessionLimiter(over.maxPerServer ?? 2);
  const e: FakeEnv = {
    auditAccepts: true,
    view: over.view ?? networkOf({ demo: { allow: ['203.0.113.7'] } }),
    blocked: new Set(),
    pending: [],
    limiter,
    get audit() {
      return { acceptsConnections: e.auditAccepts };
    },
    network: () => e.view,
    registerPendingEndpoint: (server, endpoint) => e.pending.push({ server, endpoint }),
    threat: { blocked: (server, address, user) => (e.blocked.has(`${server}/${address}/${user}`) || e.blocked.has(`${server}/${address}`) ? {} : null) },
    sessions: limiter,
  };
  return e;
}
