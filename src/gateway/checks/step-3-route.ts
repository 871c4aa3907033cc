// Step 3 (SPEC.md §3): which server, by route.ts's rules (SNI, then user@server, then the server
// option). Passing, it turns the startup into the Admission the later steps judge.
import { routeConnection } from '../route.js';
import type { ServerRecord } from '../../catalog/servers-repo.js';
import type { PrivateEndpointIdentity } from '../network-stage.js';
import { refusal, type Verdict } from './verdict.js';
import type { Admission, ListenerFacts } from './admission.js';

export interface RouteFacts {
  readonly sni: string | undefined;
  readonly params: ReadonlyMap<string, string>;
  readonly domain: string;
  readonly servers: ReadonlyMap<string, ServerRecord>;
  readonly clientAddress: string;
  readonly listener: ListenerFacts;
  readonly endpoint: PrivateEndpointIdentity | null;
  readonly tlsVersion: string | null;
}

export function route(f: RouteFacts): Verdict<{ readonly admission: Admission }> {
  const verdict = routeConnection({ sni: f.sni, params: f.params, domain: f.domain, serverExists: (name) => f.servers.has(name) });
  if (!verdict.ok) return refusal(verdict.error, verdict.reason);
  return {
    ok: true,
    admission: {
      server: f.servers.get(verdict.server)!,
      user: verdict.user,
      database: verdict.forward.get('database')!,
      forward: verdict.forward,
      clientAddress: f.clientAddress,
      listener: f.listener,
      endpoint: f.endpoint,
      tlsVersion: f.tlsVersion,
    },
  };
}
