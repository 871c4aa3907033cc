// Webhook signatures: the header a receiver checks, against an independently computed vector
// (openssl dgst -sha256 -hmac), and every way verification must say no.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { signWebhookBody, verifyWebhookSignature, webhookSignatureProblem } from '../../../../src/threat/notify/signature.js';

const SECRET = 'topsecret';
const TS = 1_700_000_000;
const BODY = '{"a":1}';
// printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'topsecret'
const VECTOR = 'sha256=6a939b0c71853d606167625a15168ee9188c6a511c773ef4f42d307f3849e50f';

describe('webhook signature', () => {
  it('is sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">', () => {
    assert.equal(signWebhookBody(SECRET, TS, BODY), VECTOR);
    assert.equal(signWebhookBody(SECRET, String(TS), Buffer.from(BODY)), VECTOR);
  });

  it('verifies a fresh, untouched request signed with the secret', () => {
    assert.equal(verifyWebhookSignature(SECRET, String(TS), BODY, VECTOR, 300, TS + 10), true);
    assert.equal(verifyWebhookSignature(SECRET, TS, Buffer.from(BODY), VECTOR, 300, TS - 299), true);
    assert.equal(verifyWebhookSignature(SECRET, TS, BODY, VECTOR.toUpperCase().replace('SHA256=', 'sha256='), 300, TS), true);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(verifyWebhookSignature('k', now, 'x', signWebhookBody('k', now, 'x')), true, 'default clock and tolerance');
  });

  it('refuses a wrong secret', () => {
    assert.equal(webhookSignatureProblem('topsecreT', TS, BODY, VECTOR, 300, TS), 'mismatch');
    assert.equal(verifyWebhookSignature('', TS, BODY, VECTOR, 300, TS), false);
  });

  it('refuses a tampered body or a moved timestamp', () => {
    assert.equal(webhookSignatureProblem(SECRET, TS, '{"a":2}', VECTOR, 300, TS), 'mismatch');
    assert.equal(webhookSignatureProblem(SECRET, TS, '{"a":1} ', VECTOR, 300, TS), 'mismatch');
    assert.equal(webhookSignatureProblem(SECRET, TS + 1, BODY, VECTOR, 300, TS), 'mismatch');
  });

  it('refuses a stale or far-future timestamp even with a good signature', () => {
    assert.equal(webhookSignatureProblem(SECRET, TS, BODY, VECTOR, 300, TS + 301), 'stale');
    assert.equal(webhookSignatureProblem(SECRET, TS, BODY, VECTOR, 300, TS - 301), 'stale');
    assert.equal(webhookSignatureProblem(SECRET, TS, BODY, VECTOR, 60, TS + 61), 'stale');
    assert.equal(verifyWebhookSignature(SECRET, TS, BODY, VECTOR), false, 'a 2023 timestamp is stale today');
  });

  it('refuses malformed headers without throwing', () => {
    for (const header of [undefined, '', 'sha1=abc', VECTOR.slice(0, -2), `${VECTOR}00`, VECTOR.replace(/.$/, 'g'), VECTOR.slice(7)]) {
      assert.equal(webhookSignatureProblem(SECRET, TS, BODY, header, 300, TS), 'malformed', String(header));
    }
    for (const ts of [undefined, '', '17e8', '-1', ' 1700000000', '1700000000.5']) {
      assert.equal(webhookSignatureProblem(SECRET, ts, BODY, VECTOR, 300, TS), 'malformed', String(ts));
    }
  });
});
