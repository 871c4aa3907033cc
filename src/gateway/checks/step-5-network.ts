// Step 5 (SPEC.md §3): network rules. network-stage.ts gathers the facts, src/network/decide.ts
// decides; an endpoint seen for the first time is recorded as a Pending connection.
import { judgeNetwork } from '../network-stage.js';
import { PASS, refusal, type Verdict } from './verdict.js';
import type { Admission, CheckEnv } from './admission.js';

export function network(a: Admission, env: CheckEnv): Verdict {
  const verdict = judgeNetwork(env.network(), {
    server: a.server.name,
    publicNetworkAccess: a.server.publicNetworkAccess,
    clientAddress: a.clientAddress,
    listener: a.listener,
    endpoint: a.endpoint,
    user: a.user,
    database: a.database,
    ssl: a.tlsVersion !== null,
  });
  if (verdict.allow) return PASS;
  if (verdict.reason === 'private-endpoint-unknown' && a.endpoint) env.registerPendingEndpoint(a.server.name, a.endpoint);
  return refusal(verdict.error, verdict.reason);
}
