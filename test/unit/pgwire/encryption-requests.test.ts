// One SSLRequest and one GSSENCRequest per connection, as PostgreSQL answers them; the fuzz
// campaign found the gateway answering any number of GSSENCRequests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EncryptionRequests } from '../../../src/pgwire/encryption-requests.js';
import { ProtocolError } from '../../../src/pgwire/protocol-error.js';

const refused = (sqlstate: string, message: string) => (err: unknown) => err instanceof ProtocolError && err.sqlstate === sqlstate && err.message === message;

test('a GSSENCRequest is answered once; a second is an unsupported protocol, as in PostgreSQL', () => {
  const r = new EncryptionRequests();
  r.check('gssenc', false);
  assert.throws(() => r.check('gssenc', false), refused('0A000', 'unsupported frontend protocol 1234.5680: server supports 3.0 to 3.2'));
});

test('GSSENCRequest then SSLRequest is the libpq fallback and is allowed; nothing once encrypted', () => {
  const r = new EncryptionRequests();
  r.check('gssenc', false);
  r.check('ssl', false);
  assert.throws(() => r.check('ssl', true), refused('08P01', 'SSLRequest after encryption was established'));
  assert.throws(() => r.check('gssenc', true), refused('08P01', 'GSSENCRequest after encryption was established'));
  const s = new EncryptionRequests();
  s.check('ssl', false);
  assert.throws(() => s.check('ssl', false), refused('0A000', 'unsupported frontend protocol 1234.5679: server supports 3.0 to 3.2'));
});
