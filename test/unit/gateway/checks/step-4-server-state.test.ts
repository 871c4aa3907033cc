// Step 4: the audit log takes the session (failClosed), then only a Ready server is let through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auditAccepting, serverState } from '../../../../src/gateway/checks/step-4-server-state.js';
import type { ServerState } from '../../../../src/catalog/servers-repo.js';
import { admission, env, server } from './facts.js';

test('audit log not writable: 58030, audit-unavailable', () => {
  const e = env();
  assert.deepEqual(auditAccepting(admission(), e), { ok: true });
  e.auditAccepts = false;
  const v = auditAccepting(admission(), e);
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '58030', message: 'The audit log cannot be written: new connections are refused until it can.' });
  assert.equal(v.reason, 'audit-unavailable');
});

test('every state but Ready refuses with its own error', () => {
  const cases: [ServerState, string, string, string][] = [
    ['Inaccessible', '08004', 'Server is inaccessible: its encryption key cannot be accessed.', 'server-inaccessible'],
    ['Stopped', '57P03', 'The server is stopped. Start it and retry connection.', 'server-stopped'],
    ['Disabled', '57P03', 'The server is disabled. Contact the platform operator.', 'server-disabled'],
    ['Dropping', '57P03', 'The server is being deleted.', 'server-dropping'],
    ['Creating', '57P03', 'The server is being created. Retry in a moment.', 'server-creating'],
  ];
  for (const [state, sqlstate, message, reason] of cases) {
    const v = serverState(admission({ server: server({ state }) }));
    assert.ok(!v.ok, state);
    assert.deepEqual(v.error, { sqlstate, message });
    assert.equal(v.reason, reason);
  }
  assert.deepEqual(serverState(admission()), { ok: true });
});
