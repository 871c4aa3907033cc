// The retry schedule: exponential steps with equal jitter under a cap, Retry-After parsing and
// clamping, and the loop's stopping rules. Pure: no waiting beyond a few milliseconds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  backoffDelayMs,
  parseRetryAfter,
  retryDelayMs,
  retryPolicy,
  withRetries,
  DEFAULT_WEBHOOK_RETRY,
  type AttemptOutcome,
} from '../../../../src/threat/notify/retry.js';
import { NotifySettingsError } from '../../../../src/threat/notify/types.js';

const P = DEFAULT_WEBHOOK_RETRY; // 5 attempts, 500 ms, 30 s

describe('backoff', () => {
  it('doubles from the base and stays within [step/2, step]', () => {
    const low = [1, 2, 3, 4, 5, 6, 7, 8].map((r) => backoffDelayMs(r, P, () => 0));
    const high = [1, 2, 3, 4, 5, 6, 7, 8].map((r) => backoffDelayMs(r, P, () => 1));
    assert.deepEqual(high, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    assert.deepEqual(low, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000]);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(3, P);
      assert.ok(d >= 1000 && d <= 2000, String(d));
    }
  });

  it('never exceeds the cap, however many retries', () => {
    assert.equal(
      backoffDelayMs(60, P, () => 1),
      30_000,
    );
    assert.equal(
      backoffDelayMs(2000, { attempts: 3, baseMs: 10, capMs: 40 }, () => 1),
      40,
    );
  });

  it('policy values are checked', () => {
    assert.deepEqual(retryPolicy({ attempts: 2 }, P), { attempts: 2, baseMs: 500, capMs: 30_000 });
    assert.throws(() => retryPolicy({ attempts: 0 }, P), NotifySettingsError);
    assert.throws(() => retryPolicy({ attempts: 1.5 }, P), NotifySettingsError);
    assert.throws(() => retryPolicy({ baseMs: -1 }, P), NotifySettingsError);
    assert.throws(() => retryPolicy({ baseMs: 100, capMs: 50 }, P), NotifySettingsError);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads delta-seconds and HTTP-dates', () => {
    assert.equal(parseRetryAfter('7', now), 7000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:12 GMT', now), 12_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0, 'a date in the past means now');
  });

  it('ignores what it cannot read', () => {
    for (const v of [undefined, null, '', '-5', '1.5', 'soon', '2025-01-01T00:00:12Z', '99999999999']) assert.equal(parseRetryAfter(v, now), null, String(v));
  });

  it('takes precedence over backoff, within the cap', () => {
    assert.equal(
      retryDelayMs(1, P, 7000, () => 1),
      7000,
    );
    assert.equal(
      retryDelayMs(1, P, 0, () => 1),
      0,
    );
    assert.equal(
      retryDelayMs(1, P, 3_600_000, () => 1),
      30_000,
    );
    assert.equal(
      retryDelayMs(2, P, null, () => 1),
      1000,
    );
  });
});

describe('withRetries', () => {
  const fast = { attempts: 4, baseMs: 1, capMs: 2 };
  const fail = (retryable: boolean, error = 'boom'): AttemptOutcome => ({ ok: false, retryable, error });

  it('retries transient failures until success', async () => {
    const seen: number[] = [];
    const r = await withRetries(fast, async (n) => (seen.push(n), n < 3 ? fail(true) : { ok: true }));
    assert.deepEqual(r, { ok: true, attempts: 3 });
    assert.deepEqual(seen, [1, 2, 3]);
  });

  it('stops at the first permanent failure', async () => {
    let calls = 0;
    const r = await withRetries(fast, async () => (calls++, fail(false, 'HTTP 400')));
    assert.deepEqual(r, { ok: false, attempts: 1, error: 'HTTP 400' });
    assert.equal(calls, 1);
  });

  it('gives up after the configured attempts with the last error', async () => {
    let calls = 0;
    const r = await withRetries(fast, async (n) => (calls++, fail(true, `e${n}`)));
    assert.deepEqual(r, { ok: false, attempts: 4, error: 'e4' });
    assert.equal(calls, 4);
  });

  it('stops waiting when aborted', async () => {
    const ac = new AbortController();
    const slow = { attempts: 5, baseMs: 60_000, capMs: 60_000 };
    const p = withRetries(slow, async () => fail(true, 'HTTP 503'), ac.signal);
    setTimeout(() => ac.abort(), 5);
    const r = await p;
    assert.equal(r.ok, false);
    assert.equal(r.attempts, 1);
    assert.match(r.error ?? '', /aborted.*HTTP 503/);
  });
});
