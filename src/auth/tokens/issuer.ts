// The signing keys of one OpenID Connect issuer. Discovery (`{issuer}/.well-known/openid-configuration`)
// and the JWKS are fetched over HTTPS (optionally trusting a private CA) with bounded sizes and a
// deadline. The key set is cached and refetched when a token names an unknown kid, or when it is
// older than maxAgeSeconds, but never more often than once per refreshIntervalSeconds: a flood of
// tokens with made-up kids costs the provider at most one request per interval. A refresh replaces
// the whole set, so rotated-in keys appear and removed keys stop verifying. A failed refresh keeps
// the keys already held (a provider outage does not stop logins) and is retried after the interval.

import { fetchJson } from './fetch-json.js';
import { IssuerUnavailable } from './issuer-unavailable.js';
import { readKeySet, type KeySet } from './key-set.js';
import type { CryptoKey } from 'jose';
import type { AllowedAlgorithm } from './algorithms.js';
import { quoted, TokenRejected } from './token-rejected.js';

export interface IssuerKeysOptions {
  /** PEM bundle trusted for the issuer's HTTPS endpoints (default: Node's root certificates). */
  readonly ca?: string;
  /** Minimum seconds between two JWKS fetches. Default 10. */
  readonly refreshIntervalSeconds?: number;
  /** A key set older than this is refetched on next use (subject to the interval). Default 600. */
  readonly maxAgeSeconds?: number;
  /** Deadline for one HTTPS exchange, connect to last byte. Default 5000. */
  readonly timeoutMs?: number;
  /** Default 64 KiB. */
  readonly maxDocumentBytes?: number;
  /** Default 256 KiB. */
  readonly maxJwksBytes?: number;
  /** Default 100. */
  readonly maxKeys?: number;
}

export interface IssuerKeysStatus {
  readonly jwksUri: string | null;
  /** Usable keys currently held. */
  readonly keys: number;
  /** Discovery and JWKS requests made so far (successful or not). */
  readonly fetches: number;
  readonly refreshedAt: Date | null;
  readonly lastError: string | null;
}

type RefreshOutcome = 'refreshed' | 'failed' | 'skipped';

const DISCOVERY_PATH = '/.well-known/openid-configuration';

function checkedIssuer(issuer: string): string {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new TypeError(`issuer ${quoted(issuer)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new TypeError(`issuer ${quoted(issuer)} must be an https URL`);
  if (url.search !== '' || url.hash !== '' || issuer.includes('?') || issuer.includes('#')) {
    throw new TypeError(`issuer ${quoted(issuer)} must not have a query or fragment`);
  }
  return issuer;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a non-negative number`);
  return v;
}

export class IssuerKeys {
  /** The issuer exactly as configured: tokens' `iss` and discovery's `issuer` must equal it. */
  readonly issuer: string;
  private readonly ca: string | undefined;
  private readonly intervalMs: number;
  private readonly maxAgeMs: number;
  private readonly timeoutMs: number;
  private readonly maxDocumentBytes: number;
  private readonly maxJwksBytes: number;
  private readonly maxKeys: number;

  private keys: KeySet | null = null;
  private jwksUri: string | null = null;
  private refreshedAt = 0; // last successful refresh (ms)
  private attemptedAt = Number.NEGATIVE_INFINITY; // last refresh attempt (ms)
  private inflight: Promise<RefreshOutcome> | null = null;
  private fetches = 0;
  private lastError: string | null = null;

  constructor(issuer: string, options: IssuerKeysOptions = {}) {
    this.issuer = checkedIssuer(issuer);
    this.ca = options.ca;
    this.intervalMs = positive(options.refreshIntervalSeconds, 10, 'refreshIntervalSeconds') * 1000;
    this.maxAgeMs = positive(options.maxAgeSeconds, 600, 'maxAgeSeconds') * 1000;
    this.timeoutMs = positive(options.timeoutMs, 5000, 'timeoutMs');
    this.maxDocumentBytes = positive(options.maxDocumentBytes, 64 * 1024, 'maxDocumentBytes');
    this.maxJwksBytes = positive(options.maxJwksBytes, 256 * 1024, 'maxJwksBytes');
    this.maxKeys = positive(options.maxKeys, 100, 'maxKeys');
  }

  /**
   * Fetches discovery and the JWKS now, ignoring the refresh interval: for checking an issuer when
   * it is configured. Throws IssuerUnavailable with the cause.
   */
  async load(): Promise<void> {
    this.attemptedAt = Number.NEGATIVE_INFINITY;
    if ((await this.refresh()) !== 'refreshed') throw new IssuerUnavailable(this.lastError ?? 'issuer unavailable');
  }

  status(): IssuerKeysStatus {
    return {
      jwksUri: this.jwksUri,
      keys: this.keys?.size ?? 0,
      fetches: this.fetches,
      refreshedAt: this.refreshedAt === 0 ? null : new Date(this.refreshedAt),
      lastError: this.lastError,
    };
  }

  /**
   * The key that verifies a token signed with `alg` and naming `kid` (or no kid). Throws
   * TokenRejected: 'unknown-kid', 'algorithm' (the kid's key does not fit alg) or
   * 'issuer-unavailable' (no keys could be had).
   */
  async keyFor(alg: AllowedAlgorithm, kid: string | undefined): Promise<CryptoKey> {
    if (this.keys === null || Date.now() - this.refreshedAt > this.maxAgeMs) await this.refresh();
    let found = this.lookup(alg, kid);
    let note = '';
    if (found === 'absent') {
      const outcome = await this.refresh();
      if (this.keys === null) throw this.unavailable();
      found = this.lookup(alg, kid);
      // The refresh this token needed failed: we cannot tell whether the kid is genuine.
      if (found === 'absent' && outcome === 'failed') throw this.unavailable();
      if (found === 'absent' && outcome === 'skipped') {
        note = ` (JWKS fetched less than ${this.intervalMs / 1000} s ago, not refetched)`;
      }
    }
    if (typeof found !== 'string') return found;
    if (found === 'misfit') {
      throw new TokenRejected('algorithm', `issuer key kid=${quoted(kid)} cannot verify alg ${alg}`);
    }
    if (found === 'ambiguous') {
      throw new TokenRejected('unknown-kid', `token has no kid and the issuer has several ${alg} keys`);
    }
    throw new TokenRejected(
      'unknown-kid',
      (kid === undefined ? `token has no kid and the issuer has no ${alg} key` : `no issuer key with kid=${quoted(kid)}`) + note,
    );
  }

  private unavailable(): TokenRejected {
    return new TokenRejected('issuer-unavailable', `issuer ${this.issuer}: ${this.lastError ?? 'no keys'}`);
  }

  private lookup(alg: AllowedAlgorithm, kid: string | undefined): CryptoKey | 'absent' | 'misfit' | 'ambiguous' {
    const keys = this.keys;
    if (keys === null) return 'absent';
    if (kid !== undefined) {
      const forKid = keys.byKid.get(kid);
      if (forKid === undefined) return 'absent';
      return forKid.get(alg) ?? 'misfit';
    }
    const all = keys.byAlgorithm.get(alg) ?? [];
    if (all.length === 0) return 'absent';
    return all.length === 1 ? all[0]! : 'ambiguous';
  }

  /** Refetches, unless one is running (then joins it) or the interval has not passed since the last. */
  private refresh(): Promise<RefreshOutcome> {
    if (this.inflight !== null) return this.inflight;
    const now = Date.now();
    if (now - this.attemptedAt < this.intervalMs) return Promise.resolve('skipped');
    this.attemptedAt = now;
    this.inflight = this.fetchKeys().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchKeys(): Promise<RefreshOutcome> {
    try {
      if (this.jwksUri === null) this.jwksUri = await this.discover();
      let document: unknown;
      try {
        this.fetches++;
        document = await fetchJson(this.jwksUri, { ca: this.ca, timeoutMs: this.timeoutMs, maxBytes: this.maxJwksBytes });
      } catch (err) {
        this.jwksUri = null; // rediscover next time: the JWKS may have moved
        throw err;
      }
      this.keys = await readKeySet(document, this.maxKeys);
      this.refreshedAt = Date.now();
      this.lastError = null;
      return 'refreshed';
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      return 'failed';
    }
  }

  private async discover(): Promise<string> {
    const url = this.issuer.replace(/\/$/, '') + DISCOVERY_PATH;
    this.fetches++;
    const doc = await fetchJson(url, { ca: this.ca, timeoutMs: this.timeoutMs, maxBytes: this.maxDocumentBytes });
    if (typeof doc !== 'object' || doc === null) throw new Error(`${url}: discovery document is not an object`);
    const { issuer, jwks_uri: jwksUri } = doc as { issuer?: unknown; jwks_uri?: unknown };
    if (issuer !== this.issuer) {
      throw new Error(`${url}: discovery issuer ${quoted(issuer)} is not the configured ${quoted(this.issuer)}`);
    }
    if (typeof jwksUri !== 'string' || !jwksUri.startsWith('https://')) {
      throw new Error(`${url}: discovery jwks_uri ${quoted(jwksUri)} is not an https URL`);
    }
    return jwksUri;
  }
}
