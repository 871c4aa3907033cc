// The native relay addon (native/relay, issue 22) against its contract (src/gateway/native/addon.ts),
// up to the relay: TLS (starttls, direct), the plaintext phase, write and drain, destroy. The
// relay phase: relay-addon-relay.test.ts; the harness: harness.ts. Skipped when the addon is not
// built (scripts/build-native.sh).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { DRAIN_ABOVE } from '../../../src/gateway/native/addon.js';
import { accept, addon, adoptPlain, cert, expectEvent, handleOf, listener, noEvent, Reader, setUpAddon, skip, tearDownAddon } from './harness.js';

describe('native relay addon', { skip }, () => {
  before(() => setUpAddon());

  after(() => tearDownAddon());

  it('throws on a bad certificate and ignores commands for unknown ids', () => {
    assert.throws(() => addon.setCertificate(9, Buffer.from('not pem'), Buffer.from(cert.keyPem)));
    addon.dropCertificate(9);
    for (const f of [addon.end, addon.destroy, addon.freeze, addon.release]) f(424242);
    addon.write(424242, Buffer.from('x'));
    addon.pause(424242, true);
    addon.tlsAnswer(424242, null);
    addon.terminate(424242, Buffer.from('x'));
  });

  it('starttls: hello, the answer, secure; then the plaintext phase (data, write, pause, freeze, end)', async () => {
    const raw = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    const side = await accept();
    // The gateway's part: the SSLRequest is read in JavaScript and answered 'S'.
    raw.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
    side.resume();
    const req: Buffer = await new Promise((r) => side.once('data', r));
    assert.equal(req.length, 8);
    handleOf(side).readStop();
    side.write('S');
    await new Promise((r) => raw.once('data', r));
    const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'starttls');
    side.destroy();
    const client = tls.connect({ socket: raw, servername: 'db.example', rejectUnauthorized: false });
    const reader = new Reader(client);
    const hello = await expectEvent(id, 'hello');
    assert.deepEqual({ sni: hello.sni, alpn: hello.alpn }, { sni: 'db.example', alpn: [] });
    addon.tlsAnswer(id, 1);
    const secure = await expectEvent(id, 'secure');
    await new Promise<void>((r) => (client.authorized !== undefined && client.getProtocol() ? r() : client.once('secureConnect', () => r())));
    assert.equal(secure.version, client.getProtocol());
    assert.equal(secure.version, 'TLSv1.3');
    assert.equal(secure.cipher, client.getCipher().standardName);
    assert.equal(secure.sni, 'db.example');
    assert.equal(secure.alpn, null);

    client.write('hello');
    const data = await expectEvent(id, 'data');
    assert.equal(data.data.toString(), 'hello');
    assert.ok(Buffer.isBuffer(data.data));
    addon.write(id, Buffer.from('world'));
    assert.equal((await reader.until((b) => b.length >= 5, 'write')).toString(), 'world');

    addon.pause(id, true);
    await new Promise((r) => setTimeout(r, 50));
    client.write('paused');
    await noEvent(id, 200);
    addon.pause(id, false);
    assert.equal((await expectEvent(id, 'data')).data.toString(), 'paused');

    client.write('last');
    await new Promise((r) => setTimeout(r, 100));
    addon.freeze(id);
    assert.equal((await expectEvent(id, 'data')).data.toString(), 'last');
    await expectEvent(id, 'frozen');
    client.write('after the freeze');
    await noEvent(id, 150);

    addon.write(id, Buffer.from('bye'));
    addon.end(id);
    const closed = await expectEvent(id, 'closed');
    assert.equal(closed.error, null);
    assert.equal(closed.reusable, false);
    assert.equal(closed.bytesFromClient, 'hellopausedlast'.length);
    assert.equal(closed.bytesToClient, 'worldbye'.length);
    await reader.end();
    assert.equal(reader.buf.toString(), 'worldbye');
    addon.write(id, Buffer.from('ignored after closed'));
    client.destroy();
  });

  it('direct TLS with ALPN postgresql (prefix read by JavaScript), TLS 1.2, client end', async () => {
    const client = tls.connect({
      port: (listener.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      servername: 'direct.example',
      ALPNProtocols: ['postgresql'],
      maxVersion: 'TLSv1.2',
      rejectUnauthorized: false,
    });
    const reader = new Reader(client);
    const side = await accept();
    side.resume();
    const prefix: Buffer = await new Promise((r) => side.once('data', r));
    handleOf(side).readStop();
    const id = addon.adopt(handleOf(side).fd, prefix, 'direct');
    side.destroy();
    const hello = await expectEvent(id, 'hello');
    assert.deepEqual({ sni: hello.sni, alpn: hello.alpn }, { sni: 'direct.example', alpn: ['postgresql'] });
    addon.tlsAnswer(id, 1);
    const secure = await expectEvent(id, 'secure');
    await new Promise<void>((r) => (client.getProtocol() ? r() : client.once('secureConnect', () => r())));
    assert.equal(secure.version, 'TLSv1.2');
    assert.equal(secure.cipher, client.getCipher().standardName);
    assert.equal(secure.cipher, 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384');
    assert.equal(secure.alpn, 'postgresql');
    client.end();
    await expectEvent(id, 'end');
    addon.destroy(id);
    const closed = await expectEvent(id, 'closed');
    assert.equal(closed.error, null);
    await reader.end();
  });

  it('direct TLS without ALPN postgresql is closed before any hello; tlsAnswer(null) closes', async () => {
    for (const alpn of [undefined, ['h2']]) {
      const client = tls.connect({ port: (listener.address() as net.AddressInfo).port, host: '127.0.0.1', ALPNProtocols: alpn, rejectUnauthorized: false });
      const reader = new Reader(client);
      const side = await accept();
      const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'direct');
      side.destroy();
      const closed = await expectEvent(id, 'closed');
      assert.match(closed.error ?? '', /ALPN/);
      await reader.end();
    }
    const client = tls.connect({ port: (listener.address() as net.AddressInfo).port, host: '127.0.0.1', servername: 'nobody', rejectUnauthorized: false });
    const reader = new Reader(client);
    const side = await accept();
    const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'starttls');
    side.destroy();
    assert.equal((await expectEvent(id, 'hello')).sni, 'nobody');
    addon.tlsAnswer(id, null);
    await expectEvent(id, 'closed');
    await reader.end();
    assert.equal(client.getProtocol(), null, 'no handshake');
  });

  it('destroy is not held up by a write to a client that does not read', async () => {
    const c = await adoptPlain();
    c.client.pause();
    handleOf(c.client).readStop();
    const big = Buffer.alloc(32 * 1024 * 1024, 1);
    addon.write(c.id, big);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    addon.destroy(c.id);
    const closed = await expectEvent(c.id, 'closed', 2000);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(closed.bytesToClient, 0);
    c.client.destroy();
  });

  it('write counts the bytes not on the socket yet; past DRAIN_ABOVE a drain follows once the client read them', async (t) => {
    const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    const side = await accept();
    const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'none');
    side.destroy();
    await new Promise<void>((r) => (client.connecting ? client.once('connect', () => r()) : r()));
    t.after(() => client.destroy()); // a failure here must not leave the process waiting on it
    // A client that does not read: the socket's buffers fill and the rest stays counted.
    client.pause();
    const total = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(total / 64, 7);
    let unwritten = 0;
    for (let i = 0; i < 64; i++) unwritten = addon.write(id, chunk);
    assert.ok(unwritten > DRAIN_ABOVE, `${unwritten} bytes unwritten right after the writes`);
    await new Promise((r) => setTimeout(r, 200));
    unwritten = addon.write(id, Buffer.alloc(0));
    assert.ok(unwritten > DRAIN_ABOVE, `${unwritten} bytes still unwritten with a client that does not read`);
    assert.ok(unwritten < total, 'some went out');
    // The client reads: everything arrives, and then the drain.
    let received = 0;
    client.on('data', (d: Buffer) => (received += d.length));
    client.resume();
    // A drain may have come already, for a first write the socket took whole before the next
    // was queued: the one that counts leaves nothing unwritten.
    for (;;) {
      await expectEvent(id, 'drain', 10_000);
      if (addon.write(id, Buffer.alloc(0)) === 0) break;
    }
    while (received < total) await new Promise((r) => setTimeout(r, 10));
    assert.equal(received, total);
    addon.destroy(id);
    await expectEvent(id, 'closed');
    client.destroy();
  });
});
