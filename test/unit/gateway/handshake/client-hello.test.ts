// The server name of a ClientHello, read as the native relay's TLS (rustls) would judge it: a
// name it refuses keeps the connection on Node's TLS.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { test } from 'node:test';
import { clientHelloServerName } from '../../../../src/gateway/handshake/client-hello.js';

/** The first bytes Node's TLS client sends with this `servername` (undefined: none). */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))));
  const c = tls.connect({ host: '127.0.0.1', port, ...(servername !== undefined ? { servername } : {}), rejectUnauthorized: false });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

test('a DNS name, none, and names rustls refuses', async () => {
  assert.equal(clientHelloServerName(await clientHello('gw1.pgwarden.localhost')).kind, 'dns');
  assert.equal(clientHelloServerName(await clientHello('localhost')).kind, 'dns');
  assert.equal(clientHelloServerName(await clientHello(undefined)).kind, 'none');
  // libpq with only hostaddr sends its socket directory.
  assert.equal(clientHelloServerName(await clientHello('/var/run/postgresql')).kind, 'invalid');
  assert.equal(clientHelloServerName(await clientHello('bad name')).kind, 'invalid');
});

test('a ClientHello cut short, or something else, is unknown', async () => {
  const hello = await clientHello('gw1.pgwarden.localhost');
  assert.equal(clientHelloServerName(hello.subarray(0, 40)).kind, 'unknown');
  assert.equal(clientHelloServerName(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])).kind, 'unknown');
});

test('the DNS name itself, for routing by SNI before the handshake; none for no name, an address, a refused name or a cut ClientHello', async () => {
  const hello = await clientHello('web-1.pgwarden.localhost');
  assert.deepEqual(clientHelloServerName(hello), { kind: 'dns', name: 'web-1.pgwarden.localhost' });
  assert.deepEqual(clientHelloServerName(await clientHello(undefined)), { kind: 'none' });
  assert.deepEqual(clientHelloServerName(await clientHello('/var/run/postgresql')), { kind: 'invalid' });
  assert.deepEqual(clientHelloServerName(hello.subarray(0, 40)), { kind: 'unknown' });
});
