// Steps 3 to 7 of SPEC.md §3, in order. Step 3 routes; every check after it judges the routed
// connection. Where the gateway checks more than SPEC names, the extra check sits under the step
// it belongs to, in the order the gateway has always run them.
import { route, type RouteFacts } from './step-3-route.js';
import { auditAccepting, serverState } from './step-4-server-state.js';
import { network } from './step-5-network.js';
import { tlsPolicy } from './step-6-tls-policy.js';
import { startupParameters, throttle, connectionLimit } from './step-7-protection.js';
import type { Admission, Check, CheckEnv } from './admission.js';
import type { HeldGuards, Refusal } from './verdict.js';

export type ChecksOutcome =
  | { readonly ok: true; readonly admission: Admission }
  /** `admission`: null when routing (step 3) refused the connection. */
  | { readonly ok: false; readonly admission: Admission | null; readonly refusal: Refusal };

export const CHECKS: readonly Check[] = [
  { step: 4, name: 'audit-accepting', run: auditAccepting },
  { step: 4, name: 'server-state', run: serverState },
  { step: 5, name: 'network', run: network },
  { step: 6, name: 'tls-policy', run: tlsPolicy },
  { step: 7, name: 'startup-parameters', run: startupParameters },
  { step: 7, name: 'throttle', run: throttle },
  { step: 7, name: 'connection-limit', run: connectionLimit },
];

/** Runs steps 3–7, stopping at the first refusal; the guards of passing checks go to `held`. */
export function runChecks(facts: RouteFacts, env: CheckEnv, held: HeldGuards, checks: readonly Check[] = CHECKS): ChecksOutcome {
  const routed = route(facts);
  if (!routed.ok) return { ok: false, admission: null, refusal: routed };
  const { admission } = routed;
  for (const check of checks) {
    const verdict = check.run(admission, env);
    if (!verdict.ok) return { ok: false, admission, refusal: verdict };
    held.add(verdict.guard);
  }
  return { ok: true, admission };
}
