// FIPS mode on the machine the tests run on. Where the OpenSSL FIPS provider is not configured
// (Debian's OpenSSL ships none), enabling must fail loudly and leave crypto working; where it is,
// enabling must work and be reported.
import assert from 'node:assert/strict';
import { createHash, getFips } from 'node:crypto';
import { describe, it } from 'node:test';
import { enableFips, fipsStatus, FipsUnavailableError } from '../../../src/crypto/fips.js';

describe('FIPS mode', () => {
  it('status and enable agree', () => {
    const before = fipsStatus();
    assert.equal(before.enabled, getFips() === 1);
    if (!before.available) {
      assert.match(before.reason ?? '', /FIPS provider/);
      assert.throws(
        () => enableFips(),
        (err: unknown) => {
          assert.ok(err instanceof FipsUnavailableError);
          assert.match(err.message, /openssl fipsinstall/);
          assert.match(err.message, /OPENSSL_CONF/);
          return true;
        },
      );
      assert.equal(getFips(), 0, 'left off');
      assert.equal(createHash('sha256').update('abc').digest('hex').slice(0, 8), 'ba7816bf', 'crypto still works');
      assert.equal(fipsStatus().enabled, false);
    } else {
      enableFips();
      assert.deepEqual(fipsStatus(), { available: true, enabled: true });
    }
  });
});
