// SCRAM verifiers of the roles clients log in as, read from the server by the platform and
// cached. An entry is dropped when a login with it fails, and after a minute (a password
// changed in SQL is also caught by the server, which re-checks every login the gateway makes).
//
// Each read costs the server a maintenance connection of its own, so a flood of failed logins
// must not become a flood of reads: concurrent look-ups of one role share one read, and after a
// failed login has caused a re-read, further failures re-read that role at most once a second.
import { parseScramVerifier, type ScramVerifier } from '../auth/scram/index.js';

export type VerifierLookup =
  | { readonly kind: 'scram'; readonly verifier: ScramVerifier }
  | { readonly kind: 'unknown-role' }
  | { readonly kind: 'no-scram-secret' }
  | { readonly kind: 'cannot-login' }
  | { readonly kind: 'expired' };

export interface VerifierSource {
  roleVerifier(serverId: number, role: string): Promise<{ rolpassword: string | null; canLogin: boolean; validUntil: Date | null } | null>;
}

const TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;
/** After a failed login caused a re-read, the next failures re-read at most this often. */
const FAILURE_REREAD_MS = 1_000;

interface Entry {
  readonly lookup: VerifierLookup;
  readonly at: number;
  readonly validUntil: Date | null;
  /** Read because a login with the entry before it failed. */
  readonly afterFailure: boolean;
}

export class VerifierCache {
  private readonly entries = new Map<string, Entry>();
  private readonly reading = new Map<string, Promise<Entry>>();
  /** Keys whose entry a failed login dropped: their next read is marked afterFailure. */
  private readonly failed = new Set<string>();

  constructor(private readonly source: VerifierSource) {}

  async get(serverId: number, role: string): Promise<VerifierLookup> {
    const key = `${serverId}\0${role}`;
    const hit = this.entries.get(key);
    const now = Date.now();
    if (hit && now - hit.at < TTL_MS) return judgeExpiry(hit.lookup, hit.validUntil);
    let reading = this.reading.get(key);
    if (!reading) {
      reading = this.read(serverId, role, key).finally(() => this.reading.delete(key));
      this.reading.set(key, reading);
    }
    const entry = await reading;
    return judgeExpiry(entry.lookup, entry.validUntil);
  }

  /** Reads the role's verifier now, bypassing the cache (which it then holds): the pools poll
   * this to notice a password changed in SQL. */
  async refresh(serverId: number, role: string): Promise<VerifierLookup> {
    const key = `${serverId}\0${role}`;
    const entry = await this.read(serverId, role, key);
    return judgeExpiry(entry.lookup, entry.validUntil);
  }

  private async read(serverId: number, role: string, key: string): Promise<Entry> {
    const afterFailure = this.failed.delete(key);
    const row = await this.source.roleVerifier(serverId, role);
    let lookup: VerifierLookup;
    if (!row) lookup = { kind: 'unknown-role' };
    else if (!row.canLogin) lookup = { kind: 'cannot-login' };
    else {
      const verifier = row.rolpassword ? parseScramVerifier(row.rolpassword) : null;
      lookup = verifier ? { kind: 'scram', verifier } : { kind: 'no-scram-secret' };
    }
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    const entry: Entry = { lookup, at: Date.now(), validUntil: row?.validUntil ?? null, afterFailure };
    this.entries.set(key, entry);
    return entry;
  }

  /** A login as `role` failed: its entry is read again, unless a failure caused the current
   * entry less than a second ago (a flood of failures reads at most once a second). */
  loginFailed(serverId: number, role: string): void {
    const key = `${serverId}\0${role}`;
    const hit = this.entries.get(key);
    if (hit?.afterFailure && Date.now() - hit.at < FAILURE_REREAD_MS) return;
    this.entries.delete(key);
    if (this.failed.size >= MAX_ENTRIES) this.failed.clear();
    this.failed.add(key);
  }
}

function judgeExpiry(lookup: VerifierLookup, validUntil: Date | null): VerifierLookup {
  if (lookup.kind === 'scram' && validUntil && validUntil.getTime() < Date.now()) return { kind: 'expired' };
  return lookup;
}
