// The statement event built once in canonical key order serializes exactly as the spread it
// replaces.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { orderedConnection, statementExecuted } from '../../../src/audit/statement-audit.js';
import { canonicalJson, canonicalJsonOfPlain } from '../../../src/audit/store/canonical-json.js';
import type { StatementEvent } from '../../../src/audit/tap/index.js';

it('statementExecuted: the same canonical JSON as the spread event, keys already in order', () => {
  const conn = { connId: 'c1', clientAddress: '127.0.0.1', clientPort: 5000, listener: 'public' as const, privateEndpoint: 'pe' };
  const base: StatementEvent = { text: 'SELECT 1', class: 'READ', classes: ['READ'], commandTag: 'SELECT', objects: [{ kind: 'relation', name: 'public.t' }], outcome: 'success', durationMs: 1.5, protocol: 'simple' };
  const full: StatementEvent = { ...base, params: ['1', null], outcome: 'failure', sqlstate: '22012', errorMessage: 'division by zero', rows: 3, copyBytes: 10, truncated: true, textLength: 9000, textSha256: 'ab', parseError: 'x' };
  for (const st of [base, full]) {
    for (const fields of [{}, { server: 's', user: 'u', database: 'd', applicationName: 'a', objectId: 'o' }, { server: 's', user: undefined }]) {
      const spread = { type: 'statement', time: 'T', connection: conn, ...fields, ...st, objects: [...st.objects], classes: [...st.classes] };
      const built = statementExecuted('T', orderedConnection(conn), fields, st);
      assert.equal(canonicalJsonOfPlain(built), canonicalJson(spread));
      const keys = Object.keys(built);
      assert.deepEqual(keys, [...keys].sort());
    }
  }
});
