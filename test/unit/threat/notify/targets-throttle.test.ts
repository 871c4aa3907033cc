// How targets are written in results (no credentials, no query values), how HTTP statuses are
// judged, and the resend rule for repeated alerts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mayResend, ResendThrottle } from '../../../../src/threat/notify/resend-throttle.js';
import { webhookTarget } from '../../../../src/threat/notify/target.js';
import { judgeStatus, webhookPayload } from '../../../../src/threat/notify/webhook.js';
import { alertFixture } from './alert-fixture.js';

describe('webhook target', () => {
  it('drops user name, password, query values and fragment', () => {
    assert.equal(
      webhookTarget('https://u:p4ss@hooks.example:8443/in/alerts?token=abc&token=def&team=x#frag'),
      'https://hooks.example:8443/in/alerts?token=redacted&team=redacted',
    );
    assert.equal(webhookTarget('http://127.0.0.1:9000/hook'), 'http://127.0.0.1:9000/hook');
    assert.equal(webhookTarget('not a url ?secret=1'), 'invalid URL');
  });
});

describe('HTTP status judgement', () => {
  it('retries 5xx and 429, honours Retry-After; never other 4xx or redirects', () => {
    assert.deepEqual(judgeStatus(204, undefined), { ok: true });
    assert.deepEqual(judgeStatus(503, undefined), { ok: false, retryable: true, error: 'HTTP 503', retryAfterMs: null });
    assert.deepEqual(judgeStatus(429, '3'), { ok: false, retryable: true, error: 'HTTP 429', retryAfterMs: 3000 });
    for (const s of [400, 401, 403, 404, 410, 422]) assert.equal((judgeStatus(s, '1') as { retryable: boolean }).retryable, false, String(s));
    assert.deepEqual(judgeStatus(301, undefined), { ok: false, retryable: false, error: 'HTTP 301: redirects are not followed' });
  });
});

describe('webhook payload', () => {
  it('is schema version 1 with the alert, secrets masked, extra fields not leaked', () => {
    const alert = { ...alertFixture({ evidence: { token: 'abc', failedLogins: 3 } }), internalNote: 'x' };
    const body = JSON.parse(webhookPayload(alert)) as { schemaVersion: number; alert: Record<string, unknown> };
    assert.equal(body.schemaVersion, 1);
    assert.equal(body.alert.id, alert.id);
    assert.equal(body.alert.severity, 'High');
    assert.deepEqual(body.alert.evidence, { token: '[redacted]', failedLogins: 3 });
    assert.deepEqual(body.alert.location, alert.location);
    assert.equal('internalNote' in body.alert, false);
  });
});

describe('resend throttle', () => {
  const MIN = 60_000;
  it('sends the first time, then only when the count grew and the interval passed', () => {
    assert.equal(mayResend(undefined, 1, 0, 15 * MIN), true);
    const prev = { count: 5, atMs: 0 };
    assert.equal(mayResend(prev, 9, 14 * MIN, 15 * MIN), false, 'too soon');
    assert.equal(mayResend(prev, 5, 60 * MIN, 15 * MIN), false, 'nothing new');
    assert.equal(mayResend(prev, 6, 15 * MIN, 15 * MIN), true);
  });

  it('take/release: a dropped delivery gives its slot back', () => {
    const t = new ResendThrottle(10);
    const a = t.take('k', 1, 0, MIN);
    assert.ok(a);
    assert.equal(t.take('k', 2, 10, MIN), null);
    t.release('k', a);
    assert.ok(t.take('k', 2, 10, MIN), 'slot free again');
  });

  it('forgets the oldest marks beyond its bound', () => {
    const t = new ResendThrottle(2);
    t.take('a', 1, 0, MIN);
    t.take('b', 1, 0, MIN);
    t.take('c', 1, 0, MIN);
    assert.ok(t.take('a', 1, 1, MIN), 'a was forgotten');
    assert.equal(t.take('c', 1, 1, MIN), null);
  });
});
