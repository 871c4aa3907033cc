// The FIPS profile's audit signatures: ECDSA P-256 checkpoints sign and verify like Ed25519 ones
// (64-byte r||s), a changed byte fails, and other key types are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { checkpointSignatureValid, signCheckpoint, type CheckpointBody } from '../../../src/audit/store/checkpoint.js';
import { toPublicKey } from '../../../src/audit/store/signing-key.js';

const body = { v: 1, size: 10, root: 'ab'.repeat(32), time: '2026-11-25T00:00:00.000Z', keyId: 'cd'.repeat(32) } as unknown as CheckpointBody;

for (const [name, pair] of [
  ['ECDSA P-256', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ['Ed25519', generateKeyPairSync('ed25519')],
] as const) {
  test(`${name}: a checkpoint signs and verifies; a changed field does not`, () => {
    const cp = signCheckpoint(body, pair.privateKey);
    assert.equal(Buffer.from(cp.sig, 'base64').length, 64);
    const pub = toPublicKey(pair.publicKey);
    assert.equal(checkpointSignatureValid(cp, pub), true);
    assert.equal(checkpointSignatureValid({ ...cp, size: 11 } as typeof cp, pub), false);
  });
}

test('keys other than Ed25519 and P-256 are refused', () => {
  assert.throws(() => toPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey), /not an Ed25519 or ECDSA P-256 key/);
  assert.throws(() => toPublicKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey), /not an Ed25519 or ECDSA P-256 key/);
});
