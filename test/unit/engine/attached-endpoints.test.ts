// Endpoints of attached servers, and where a server's byte stream stands between messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointText, parseEndpoint, parseEndpoints } from '../../../src/engine/attached/endpoints.js';
import { MessageBoundary } from '../../../src/engine/attached/message-boundary.js';
import { errorResponse, readyForQuery } from '../../../src/pgwire/backend.js';

test('endpoints: host names, IPv4 and bracketed IPv6 with a port', () => {
  assert.deepEqual(parseEndpoint('db1.internal:5432'), { host: 'db1.internal', port: 5432 });
  assert.deepEqual(parseEndpoint(' 10.0.0.7:6432 '), { host: '10.0.0.7', port: 6432 });
  assert.deepEqual(parseEndpoint('[::1]:5433'), { host: '::1', port: 5433 });
  assert.equal(endpointText({ host: '::1', port: 5433 }), '[::1]:5433');
  assert.equal(endpointText({ host: 'db1', port: 1 }), 'db1:1');
});

test('endpoints: the exact problems', () => {
  assert.equal(parseEndpoint('db1'), "Invalid endpoint 'db1': it must be HOST:PORT (an IPv6 address in brackets: [::1]:5432).");
  assert.equal(parseEndpoint('::1:5432'), "Invalid endpoint '::1:5432': it must be HOST:PORT (an IPv6 address in brackets: [::1]:5432).");
  assert.equal(parseEndpoint('db1:0'), "Invalid endpoint 'db1:0': the port must be from 1 to 65535.");
  assert.equal(parseEndpoint('db1:70000'), "Invalid endpoint 'db1:70000': the port must be from 1 to 65535.");
  assert.equal(parseEndpoint('db_1:5432'), "Invalid endpoint 'db_1:5432': 'db_1' is not a host name or IP address.");
  assert.equal(parseEndpoint('[db1]:5432'), "Invalid endpoint '[db1]:5432': 'db1' is not a host name or IP address.");
  assert.equal(parseEndpoints([]), 'endpoints must list at least one HOST:PORT.');
  assert.equal(parseEndpoints(['a:1', 'a:1']), "endpoint 'a:1' is listed twice.");
  assert.deepEqual(parseEndpoints(['a:1', 'b:2']), [
    { host: 'a', port: 1 },
    { host: 'b', port: 2 },
  ]);
});

test('message boundary: across split headers and bodies; the last message an error', () => {
  const rfq = readyForQuery('I');
  const err = errorResponse({ severity: 'FATAL', sqlstate: '57P01', message: 'bye' });
  const all = Buffer.concat([rfq, err]);
  for (let cut = 1; cut < all.length; cut++) {
    const m = new MessageBoundary();
    m.feed(all.subarray(0, cut));
    assert.equal(m.atBoundary, cut === rfq.length, `cut at ${cut}`);
    m.feed(all.subarray(cut));
    assert.equal(m.atBoundary, true);
    assert.equal(m.endedWithError, true);
  }
  const b = new MessageBoundary();
  assert.equal(b.atBoundary, true);
  b.feed(rfq);
  assert.equal(b.endedWithError, false);
});
