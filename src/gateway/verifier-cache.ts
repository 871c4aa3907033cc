// SCRAM verifiers of the roles clients log in as, read from the server by the platform and
// cached. An entry is dropped when a login with it fails, when the password is changed through
// the platform, and after a short time (a password changed in SQL is also caught by the server,
// which re-checks every login the gateway makes).
import { parseScramVerifier, type ScramVerifier } from '../auth/scram/index.js';

export type VerifierLookup =
  | { readonly kind: 'scram'; readonly verifier: ScramVerifier }
  | { readonly kind: 'unknown-role' }
  | { readonly kind: 'no-scram-secret' }
  | { readonly kind: 'cannot-login' }
  | { readonly kind: 'expired' };

export interface VerifierSource {
  roleVerifier(
    serverId: number,
    role: string,
  ): Promise<{ rolpassword: string | null; canLogin: boolean; validUntil: Date | null } | null>;
}

const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

export class VerifierCache {
  private readonly entries = new Map<string, { lookup: VerifierLookup; at: number; validUntil: Date | null }>();

  constructor(private readonly source: VerifierSource) {}

  async get(serverId: number, role: string): Promise<VerifierLookup> {
    const key = `${serverId}\0${role}`;
    const hit = this.entries.get(key);
    const now = Date.now();
    if (hit && now - hit.at < TTL_MS) return judgeExpiry(hit.lookup, hit.validUntil);
    const row = await this.source.roleVerifier(serverId, role);
    let lookup: VerifierLookup;
    if (!row) lookup = { kind: 'unknown-role' };
    else if (!row.canLogin) lookup = { kind: 'cannot-login' };
    else {
      const verifier = row.rolpassword ? parseScramVerifier(row.rolpassword) : null;
      lookup = verifier ? { kind: 'scram', verifier } : { kind: 'no-scram-secret' };
    }
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { lookup, at: now, validUntil: row?.validUntil ?? null });
    return judgeExpiry(lookup, row?.validUntil ?? null);
  }

  invalidate(serverId: number, role?: string): void {
    if (role !== undefined) {
      this.entries.delete(`${serverId}\0${role}`);
      return;
    }
    for (const key of this.entries.keys()) if (key.startsWith(`${serverId}\0`)) this.entries.delete(key);
  }
}

function judgeExpiry(lookup: VerifierLookup, validUntil: Date | null): VerifierLookup {
  if (lookup.kind === 'scram' && validUntil && validUntil.getTime() < Date.now()) return { kind: 'expired' };
  return lookup;
}
