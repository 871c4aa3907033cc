// When to try a delivery again: exponential backoff with jitter, Retry-After, and the retry loop
// both notifiers share. The schedule is pure (random source injectable) so it can be tested
// without waiting.
import { NotifySettingsError } from './types.js';

export interface RetryPolicy {
  /** Attempts in all, the first included (1 = never retry). */
  readonly attempts: number;
  /** Wait before the first retry, before jitter. Each further retry doubles it. */
  readonly baseMs: number;
  /** No wait is longer than this, Retry-After included. */
  readonly capMs: number;
}

export const DEFAULT_WEBHOOK_RETRY: RetryPolicy = { attempts: 5, baseMs: 500, capMs: 30_000 };
export const DEFAULT_EMAIL_RETRY: RetryPolicy = { attempts: 3, baseMs: 2_000, capMs: 30_000 };

const MAX_ATTEMPTS = 20;
const MAX_CAP_MS = 3_600_000;

/** The policy with defaults filled in; throws NotifySettingsError when a value is out of range. */
export function retryPolicy(given: Partial<RetryPolicy> | undefined, defaults: RetryPolicy): RetryPolicy {
  const p = { ...defaults, ...given };
  if (!Number.isInteger(p.attempts) || p.attempts < 1 || p.attempts > MAX_ATTEMPTS) {
    throw new NotifySettingsError(`retry attempts must be an integer from 1 to ${MAX_ATTEMPTS}, got ${p.attempts}`);
  }
  if (!Number.isFinite(p.baseMs) || p.baseMs < 0) throw new NotifySettingsError(`retry baseMs must be 0 or more, got ${p.baseMs}`);
  if (!Number.isFinite(p.capMs) || p.capMs < p.baseMs || p.capMs > MAX_CAP_MS) {
    throw new NotifySettingsError(`retry capMs must be from baseMs (${p.baseMs}) to ${MAX_CAP_MS}, got ${p.capMs}`);
  }
  return p;
}

/**
 * The wait before retry number `retry` (1 = after the first failed attempt): the exponential
 * step d = min(cap, base * 2^(retry-1)), then "equal jitter": d/2 fixed plus up to d/2 random,
 * so concurrent senders spread out but never retry sooner than half the step.
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + (step / 2) * Math.min(1, Math.max(0, random())));
}

/**
 * A Retry-After header value (delta-seconds or an HTTP-date) as milliseconds from `nowMs`;
 * null when absent or unreadable. A date in the past is 0.
 */
export function parseRetryAfter(value: string | undefined | null, nowMs: number = Date.now()): number | null {
  if (value === undefined || value === null) return null;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/** The wait before retry `retry`: the server's Retry-After when it gave one, else backoff; capped. */
export function retryDelayMs(retry: number, policy: RetryPolicy, retryAfterMs: number | null, random: () => number = Math.random): number {
  if (retryAfterMs !== null) return Math.min(policy.capMs, Math.max(0, retryAfterMs));
  return backoffDelayMs(retry, policy, random);
}

/** One attempt's outcome, as the channel judges it. */
export type AttemptOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly retryable: boolean; readonly error: string; readonly retryAfterMs?: number | null };

export interface RetryOutcome {
  readonly ok: boolean;
  readonly attempts: number;
  readonly error?: string;
}

/** Aborted while waiting or sending. */
export const ABORTED = 'aborted: the notifier is closing';

/** Runs `attempt` until it succeeds, fails for good, the attempts run out or `signal` aborts. */
export async function withRetries(
  policy: RetryPolicy,
  attempt: (n: number) => Promise<AttemptOutcome>,
  signal?: AbortSignal,
  random: () => number = Math.random,
): Promise<RetryOutcome> {
  let last: AttemptOutcome = { ok: false, retryable: false, error: ABORTED };
  let n = 0;
  while (n < policy.attempts) {
    if (signal?.aborted) return { ok: false, attempts: n, error: n === 0 ? ABORTED : `${ABORTED} (last error: ${errorOf(last)})` };
    n++;
    last = await attempt(n);
    if (last.ok) return { ok: true, attempts: n };
    if (!last.retryable || n === policy.attempts) break;
    await sleep(retryDelayMs(n, policy, last.retryAfterMs ?? null, random), signal);
  }
  return { ok: false, attempts: n, error: errorOf(last) };
}

function errorOf(o: AttemptOutcome): string {
  return o.ok ? '' : o.error;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
