// W8: only a PROXY header that names the client's IP address lets a connection go on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProxyV1, buildProxyV2, parseProxyHeader } from '../../../../src/gateway/proxy-protocol/index.js';
import { hasClientAddress } from '../../../../src/gateway/proxy-stage.js';

function header(buf: Buffer) {
  const r = parseProxyHeader(buf);
  assert.equal(r.status, 'ok');
  return r.header;
}
const ends = (source: string, destination: string) => ({ source: { address: source, port: 40000 }, destination: { address: destination, port: 5432 } });

test('TCP4 and TCP6, v1 and v2, name the client', () => {
  assert.equal(hasClientAddress(header(buildProxyV2({ command: 'PROXY', ...ends('192.0.2.7', '10.0.0.1') }))), true);
  assert.equal(hasClientAddress(header(buildProxyV2({ command: 'PROXY', ...ends('2001:db8::7', '2001:db8::1') }))), true);
  assert.equal(hasClientAddress(header(buildProxyV1(ends('192.0.2.7', '10.0.0.1')))), true);
});

test('AF_UNSPEC with PROXY, AF_UNIX, v1 UNKNOWN and LOCAL do not', () => {
  assert.equal(hasClientAddress(header(buildProxyV2({ command: 'PROXY', family: 'unspec', transport: 'unspec' }))), false);
  assert.equal(hasClientAddress(header(buildProxyV2({ command: 'PROXY', family: 'unix', transport: 'stream', ...ends('/run/a', '/run/b') }))), false);
  assert.equal(hasClientAddress(header(buildProxyV1(null))), false);
  assert.equal(hasClientAddress(header(Buffer.from('PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n', 'latin1'))), false);
  assert.equal(hasClientAddress(header(buildProxyV2({ command: 'LOCAL' }))), false);
  // LOCAL carrying addresses: still the balancer's own connection.
  const local = buildProxyV2({ command: 'PROXY', ...ends('192.0.2.7', '10.0.0.1') });
  local[12] = 0x20;
  assert.equal(hasClientAddress(header(local)), false);
});
