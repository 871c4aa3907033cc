// Per-server TLS policy (SPEC.md §3 step 6): enforcement and minimal version. Pure.
import { clientErrors, type ClientError } from '../pgwire/client-errors.js';
import type { MinimalTlsVersion, Toggle } from '../catalog/servers-repo.js';

export interface TlsFacts {
  /** Negotiated protocol, e.g. 'TLSv1.3'; null on a plaintext connection. */
  readonly version: string | null;
}

export type TlsVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: 'ssl-required' | 'tls-version'; readonly error: ClientError };

const RANK: Record<string, number> = { 'TLSv1.2': 2, 'TLSv1.3': 3 };
const REQUIRED: Record<MinimalTlsVersion, number> = { TLS1_2: 2, TLS1_3: 3, TLSEnforcementDisabled: 0 };

export function decideTls(server: { sslEnforcement: Toggle; minimalTlsVersion: MinimalTlsVersion }, tls: TlsFacts): TlsVerdict {
  if (tls.version === null) {
    return server.sslEnforcement === 'Enabled'
      ? { ok: false, reason: 'ssl-required', error: clientErrors.sslRequired }
      : { ok: true };
  }
  if (server.sslEnforcement === 'Enabled' && (RANK[tls.version] ?? 0) < REQUIRED[server.minimalTlsVersion]) {
    return { ok: false, reason: 'tls-version', error: clientErrors.tlsTooOld };
  }
  return { ok: true };
}
