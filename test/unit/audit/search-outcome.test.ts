// `audit search --outcome failure` finds what went wrong, also on the platform's own side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outcomeOf } from '../../../src/audit/search.js';

test('failures by type: refused logins, crashed servers, a lost catalog, a gateway process that died', () => {
  for (const type of ['auth.failed', 'connection.denied', 'server.crashed', 'catalog.disconnected', 'gateway.worker_exited']) {
    assert.equal(outcomeOf({ type }), 'failure', type);
  }
  for (const type of ['auth.succeeded', 'catalog.reconnected', 'gateway.worker_started', 'platform.started']) {
    assert.equal(outcomeOf({ type }), 'success', type);
  }
  assert.equal(outcomeOf({ type: 'statement', outcome: 'failure' }), 'failure', 'a statement says it itself');
});
