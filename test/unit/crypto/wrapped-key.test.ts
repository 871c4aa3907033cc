import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWrappedKey, serverKeyAad } from '../../../src/crypto/kek.js';
import { KeyIntegrityError } from '../../../src/crypto/key-errors.js';

describe('wrapped key records', () => {
  const good = { provider: 'system', kekVersion: 2, keyRef: 'system:server/s1', blob: 'AAAA' };

  it('parse from JSON text or an object', () => {
    assert.deepEqual(parseWrappedKey(JSON.stringify(good)), good);
    assert.deepEqual(parseWrappedKey({ ...good, extra: 1 }), good);
  });

  it('refuse malformed records with KeyIntegrityError', () => {
    for (const bad of ['{', null, { ...good, provider: 'kms' }, { ...good, kekVersion: 0 }, { ...good, keyRef: '' }, { ...good, blob: 'not base64!' }]) {
      assert.throws(() => parseWrappedKey(bad), KeyIntegrityError);
    }
  });

  it('aad names server and purpose', () => {
    assert.equal(serverKeyAad('s1', 'volume').toString(), 'server:s1:volume');
    assert.throws(() => serverKeyAad('a:b', 'backup'), RangeError);
  });
});
