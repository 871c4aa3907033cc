// The brute-force detector: thresholds, one incident with a growing count, spraying,
// distributed attacks, and the High finding for a success after an attack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BruteForceDetector } from '../../../src/threat/detectors/brute-force.js';
import { DEFAULT_DETECTORS } from '../../../src/threat/policy.js';

const s = { ...DEFAULT_DETECTORS, bruteForceFailures: 10, sprayUsers: 5, distributedAddresses: 4, bruteForceWindowSeconds: 60 };
const fail = (address: string, user: string, timeMs: number, validUser = false) => ({ server: 'db', address, user, timeMs, validUser, throttled: false });

test('below the threshold nothing; at it one finding with the count; then count-1 findings of the same incident', () => {
  const d = new BruteForceDetector();
  for (let i = 0; i < 9; i++) assert.deepEqual(d.failure(fail('1.2.3.4', 'alice', i * 100), s), []);
  const [f] = d.failure(fail('1.2.3.4', 'alice', 1000), s);
  assert.equal(f?.kind, 'bruteForce');
  assert.equal(f?.count, 10);
  assert.equal(f?.incidentKey, 'address:1.2.3.4');
  assert.match(f!.description, /10 failed logins from 1\.2\.3\.4/);
  const [g] = d.failure(fail('1.2.3.4', 'alice', 1100), s);
  assert.equal(g?.incidentKey, f?.incidentKey);
  assert.equal(g?.count, 1);
  // Failures spread beyond the window never reach the threshold.
  const slow = new BruteForceDetector();
  for (let i = 0; i < 30; i++) assert.deepEqual(slow.failure(fail('5.6.7.8', 'bob', i * 7_000), s), []);
});

test('a valid user names its variant; spraying and distributed attacks are their own incidents', () => {
  const d = new BruteForceDetector();
  let last: ReturnType<BruteForceDetector['failure']> = [];
  for (let i = 0; i < 10; i++) last = d.failure(fail('1.1.1.1', 'alice', i, true), s);
  assert.equal(last[0]?.kind, 'bruteForceValidUser');
  assert.match(last[0]!.description, /existing role "alice"/);

  const spray = new BruteForceDetector();
  let found = null;
  for (let i = 0; i < 5; i++) found = spray.failure(fail('2.2.2.2', `user${i}`, i), s).find((x) => x.kind === 'passwordSpraying') ?? found;
  assert.equal(found?.count, 5);

  const dist = new BruteForceDetector();
  found = null;
  for (let i = 0; i < 4; i++) found = dist.failure(fail(`3.3.3.${i}`, 'carol', i), s).find((x) => x.kind === 'distributedBruteForce') ?? found;
  assert.equal(found?.principal, 'carol');
  assert.equal(found?.sourceAddress, null);
});

test('success after an attack from that address, or during a distributed attack on the user, is High', () => {
  const d = new BruteForceDetector();
  for (let i = 0; i < 10; i++) d.failure(fail('9.9.9.9', 'alice', i), s);
  const [h] = d.success({ server: 'db', address: '9.9.9.9', user: 'alice', timeMs: 5000, method: 'scram-sha-256' }, s);
  assert.equal(h?.kind, 'bruteForceSuccess');
  assert.match(h!.description, /after 10 failed logins/);
  assert.deepEqual(d.success({ server: 'db', address: '9.9.9.8', user: 'alice', timeMs: 5000, method: 'scram-sha-256' }, s), []);
  assert.deepEqual(d.success({ server: 'db', address: '9.9.9.9', user: 'alice', timeMs: 5000 + 61_000, method: 'scram-sha-256' }, s), [], 'window over');
  const dist = new BruteForceDetector();
  for (let i = 0; i < 4; i++) dist.failure(fail(`4.4.4.${i}`, 'erin', i), s);
  assert.equal(dist.success({ server: 'db', address: '7.7.7.7', user: 'erin', timeMs: 100, method: 'token' }, s)[0]?.kind, 'bruteForceSuccess');
});
