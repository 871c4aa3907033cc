// The verifier cache bounds what failed logins cost the server: each read is a maintenance
// connection of its own, so a flood of failures must not become a flood of reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VerifierCache, type VerifierSource } from '../../../src/gateway/verifier-cache.js';
import { buildScramVerifier } from '../../../src/auth/scram/verifier.js';

const VERIFIER = buildScramVerifier('Secret-Passw0rd!');

function counting(): VerifierSource & { reads: number; release: () => void } {
  let gate: (() => void) | null = null;
  const src = {
    reads: 0,
    release: () => gate?.(),
    async roleVerifier() {
      src.reads++;
      await new Promise<void>((r) => {
        gate = r;
        setImmediate(r);
      });
      return { rolpassword: VERIFIER, canLogin: true, validUntil: null };
    },
  };
  return src;
}

test('concurrent look-ups of one role share one read', async () => {
  const src = counting();
  const cache = new VerifierCache(src);
  const all = await Promise.all(Array.from({ length: 50 }, () => cache.get(1, 'alice')));
  assert.equal(src.reads, 1);
  assert.ok(all.every((l) => l.kind === 'scram'));
});

test('the first failed login re-reads at once (a password changed in SQL); a flood of failures reads at most once a second', async () => {
  const src = counting();
  const cache = new VerifierCache(src);
  await cache.get(1, 'alice');
  assert.equal(src.reads, 1);
  cache.loginFailed(1, 'alice');
  await cache.get(1, 'alice');
  assert.equal(src.reads, 2, 'the first failure re-reads');
  for (let i = 0; i < 1000; i++) {
    cache.loginFailed(1, 'alice');
    await cache.get(1, 'alice');
  }
  assert.equal(src.reads, 2, 'failures within a second of a failure-caused read do not read again');
  cache.loginFailed(1, 'bob');
  await cache.get(1, 'bob');
  assert.equal(src.reads, 3, 'another role is read on its own');
});
