// Step 6 (SPEC.md §3): the server's TLS policy, enforcement and minimal version.
import { clientErrors } from '../../pgwire/client-errors.js';
import type { MinimalTlsVersion, Toggle } from '../../catalog/servers-repo.js';
import { PASS, refusal, type Verdict } from './verdict.js';
import type { Admission } from './admission.js';

const RANK: Record<string, number> = { 'TLSv1.2': 2, 'TLSv1.3': 3 };
const REQUIRED: Record<MinimalTlsVersion, number> = { TLS1_2: 2, TLS1_3: 3, TLSEnforcementDisabled: 0 };

export function tlsPolicy(a: Admission): Verdict {
  return decideTls(a.server, a.tlsVersion);
}

/** `version`: the negotiated protocol, e.g. 'TLSv1.3'; null on a plaintext connection. */
export function decideTls(server: { sslEnforcement: Toggle; minimalTlsVersion: MinimalTlsVersion }, version: string | null): Verdict {
  if (version === null) return server.sslEnforcement === 'Enabled' ? refusal(clientErrors.sslRequired, 'ssl-required') : PASS;
  if (server.sslEnforcement === 'Enabled' && (RANK[version] ?? 0) < REQUIRED[server.minimalTlsVersion]) {
    return refusal(clientErrors.tlsTooOld, 'tls-version');
  }
  return PASS;
}
