// Step 6: the server's TLS enforcement and minimal version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tlsPolicy } from '../../../../src/gateway/checks/step-6-tls-policy.js';
import { admission, server } from './facts.js';

test('plaintext while enforced: 28000 ssl-required; allowed when enforcement is off', () => {
  const v = tlsPolicy(admission({ tlsVersion: null }));
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28000', message: 'SSL connection is required. Please specify SSL options and retry.' });
  assert.equal(v.reason, 'ssl-required');
  assert.deepEqual(tlsPolicy(admission({ tlsVersion: null, server: server({ sslEnforcement: 'Disabled' }) })), { ok: true });
});

test('below the minimal version: 28000 tls-version', () => {
  const v = tlsPolicy(admission({ tlsVersion: 'TLSv1.2', server: server({ minimalTlsVersion: 'TLS1_3' }) }));
  assert.ok(!v.ok);
  assert.deepEqual(v.error, {
    sqlstate: '28000',
    message: 'TLS version used does not meet minimal requirements for this server. Please use a higher TLS version and retry.',
  });
  assert.equal(v.reason, 'tls-version');
  assert.deepEqual(tlsPolicy(admission({ tlsVersion: 'TLSv1.3', server: server({ minimalTlsVersion: 'TLS1_3' }) })), { ok: true });
  assert.deepEqual(tlsPolicy(admission({ tlsVersion: 'TLSv1.2' })), { ok: true });
  assert.deepEqual(tlsPolicy(admission({ tlsVersion: 'TLSv1.2', server: server({ sslEnforcement: 'Disabled', minimalTlsVersion: 'TLS1_3' }) })), { ok: true });
});
