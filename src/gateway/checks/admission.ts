// What steps 4–7 judge (the routed connection, as plain facts) and what they read of the
// gateway (all in memory: no I/O on the connection path).
import type { ServerRecord } from '../../catalog/servers-repo.js';
import type { NetworkView, PrivateEndpointIdentity } from '../network-stage.js';
import type { Verdict } from './verdict.js';

export type ListenerFacts = { readonly kind: 'public' } | { readonly kind: 'private'; readonly vnet: string } | { readonly kind: 'private-link' };

export interface Admission {
  readonly server: ServerRecord;
  /** The role name the server sees. */
  readonly user: string;
  readonly database: string;
  /** Startup parameters to forward (routing hints removed). */
  readonly forward: ReadonlyMap<string, string>;
  readonly clientAddress: string;
  readonly listener: ListenerFacts;
  /** The private endpoint named by the PROXY header, or null. */
  readonly endpoint: PrivateEndpointIdentity | null;
  /** Negotiated TLS protocol ('TLSv1.3'), or null on plaintext. */
  readonly tlsVersion: string | null;
}

export interface CheckEnv {
  readonly audit: { readonly acceptsConnections: boolean };
  network(): NetworkView;
  /** Records an endpoint identity seen for the first time as a Pending connection of the server. */
  registerPendingEndpoint(server: string, endpoint: PrivateEndpointIdentity): void;
  readonly threat: { blocked(server: string, address: string, user: string): unknown | null };
  readonly sessions: { acquire(serverId: number, pooled?: boolean): (() => void) | null };
}

export interface Check {
  /** The step of SPEC.md §3 it belongs to. */
  readonly step: 4 | 5 | 6 | 7;
  readonly name: string;
  run(a: Admission, env: CheckEnv): Verdict;
}
