// Step 5: the network rules of the server; an endpoint seen for the first time is recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { network } from '../../../../src/gateway/checks/step-5-network.js';
import { admission, env, networkOf, server } from './facts.js';

test('a firewall rule admits the address', () => {
  assert.deepEqual(network(admission(), env()), { ok: true });
});

test('no rule: the pg_hba.conf text with address, user, database and SSL', () => {
  const v = network(admission({ clientAddress: '198.51.100.1', tlsVersion: null }), env());
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28000', message: 'no pg_hba.conf entry for host "198.51.100.1", user "alice", database "app", SSL off' });
  assert.equal(v.reason, 'no-firewall-rule');
  const tls = network(admission({ clientAddress: '198.51.100.1' }), env());
  assert.ok(!tls.ok);
  assert.match(tls.error.message, /SSL on$/);
});

test('a server the view does not know: everything denied', () => {
  const v = network(admission({ server: server({ name: 'fresh' }) }), env());
  assert.ok(!v.ok);
  assert.equal(v.reason, 'no-firewall-rule');
});

test('public network access disabled', () => {
  const e = env({ view: networkOf({ demo: { allow: ['203.0.113.7'], publicNetworkAccess: 'Disabled' } }) });
  const v = network(admission(), e);
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28000', message: 'Public network access is denied for this server. Connect through an approved private endpoint.' });
  assert.equal(v.reason, 'public-access-disabled');
});

test('private endpoints: unknown ones are recorded as pending, unapproved ones refused, approved ones admitted', () => {
  const endpoint = { id: '42', kind: 'azure-private-link' as const };
  const e = env({
    view: networkOf({
      demo: {
        privateEndpoints: new Map([
          ['7', { status: 'Approved' as const }],
          ['8', { status: 'Pending' as const }],
        ]),
      },
    }),
  });
  const unknown = network(admission({ listener: { kind: 'private-link' }, endpoint }), e);
  assert.ok(!unknown.ok);
  assert.deepEqual(unknown.error, { sqlstate: '28000', message: 'Private endpoint connection is not approved for this server.' });
  assert.equal(unknown.reason, 'private-endpoint-unknown');
  assert.deepEqual(e.pending, [{ server: 'demo', endpoint }]);

  const pending = network(admission({ listener: { kind: 'private-link' }, endpoint: { id: '8', kind: 'azure-private-link' } }), e);
  assert.ok(!pending.ok);
  assert.equal(pending.reason, 'private-endpoint-not-approved');
  assert.equal(e.pending.length, 1, 'a known endpoint is not recorded again');

  assert.deepEqual(network(admission({ listener: { kind: 'private-link' }, endpoint: { id: '7', kind: 'aws-vpc-endpoint' } }), e), { ok: true });
});
