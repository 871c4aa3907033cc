// The native relay addon (native/relay, issue 22) against its contract (src/gateway/native/addon.ts):
// the relay phase, with real sockets and the fake PostgreSQL server of harness.ts. TLS and the
// plaintext phase: relay-addon-handshake.test.ts. Skipped when the addon is not built
// (scripts/build-native.sh).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import {
  accept,
  addon,
  adoptPlain,
  complete,
  dataRow,
  errorResponse,
  expectEvent,
  fakeServer,
  handleOf,
  listener,
  messages,
  msg,
  options,
  query,
  Reader,
  readObserve,
  ready,
  relayed,
  SERVER_GONE,
  serverSocket,
  setUpAddon,
  skip,
  TERMINATE,
  tearDownAddon,
  untilClosed,
} from './harness.js';

/** A direct-TLS client whose connection the addon took over, past 'secure' (certificate 1). */
async function secureDirect(): Promise<{ client: tls.TLSSocket; id: number }> {
  const client = tls.connect({
    port: (listener.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    ALPNProtocols: ['postgresql'],
    rejectUnauthorized: false,
  });
  const side = await accept();
  const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'direct');
  side.destroy();
  await expectEvent(id, 'hello');
  addon.tlsAnswer(id, 1);
  await expectEvent(id, 'secure');
  return { client, id };
}

describe('native relay addon', { skip }, () => {
  before(() => setUpAddon());

  after(() => tearDownAddon());

  it('a TLS session relayed: the answers over TLS, serverGone then close_notify', async () => {
    const { client, id } = await secureDirect();
    const reader = new Reader(client);
    client.write(query('rows 0'));
    assert.equal((await expectEvent(id, 'data')).data[0], 'Q'.charCodeAt(0));
    addon.freeze(id);
    await expectEvent(id, 'frozen');
    const s = await serverSocket();
    addon.relay(id, s.fd, options({ clientRest: query('rows 5'), serverGone: SERVER_GONE, observe: true }));
    s.socket.destroy();
    await reader.until((b) => messages(b).list.filter(([t]) => t === 'D').length === 5 && messages(b).rest.length === 0, 'rows 5');
    reader.take();
    client.write(query('gone'));
    assert.deepEqual(await reader.end(), SERVER_GONE);
    const { closed } = await untilClosed(id);
    assert.equal(closed.error, null);
    assert.equal(closed.bytesFromClient, query('rows 5').length + query('gone').length);
  });

  it('a TLS client that stops reading gets the whole result when it reads again (the last records are flushed)', async (t) => {
    const { client, id } = await secureDirect();
    t.after(() => client.destroy());
    addon.freeze(id);
    await expectEvent(id, 'frozen');
    const s = await serverSocket();
    // 32,768 rows of 1 KB: far more than the sockets hold while the client does not read.
    client.pause();
    addon.relay(id, s.fd, options({ clientRest: query('big 32768') }));
    s.socket.destroy();
    await new Promise((r) => setTimeout(r, 500)); // the addon has taken all it can meanwhile
    let tail = Buffer.alloc(0);
    let bytes = 0;
    const done = new Promise<void>((resolve) =>
      client.on('data', (d: Buffer) => {
        bytes += d.length;
        tail = Buffer.concat([tail, d]).subarray(-6);
        if (tail.equals(ready())) resolve();
      }),
    );
    client.resume();
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`the result stopped after ${bytes} bytes`)), 15_000))]);
    addon.destroy(id);
    await untilClosed(id);
  });

  it('relays both ways, clientRest and serverRest first, observe with run records', async () => {
    const parameterStatus = msg('S', 'application_name\0psql\0');
    const r = await relayed({
      clientRest: query('rows 3'),
      serverRest: Buffer.concat([parameterStatus, ready()]),
      observe: true,
    });
    // serverRest, then the answer to clientRest.
    const expected = Buffer.concat([
      parameterStatus,
      ready(),
      msg('T', 'desc'),
      dataRow('row 0'),
      dataRow('row 1'),
      dataRow('row 2'),
      complete('SELECT 3'),
      ready(),
    ]);
    await r.reader.until((b) => b.length >= expected.length, 'rows 3');
    assert.deepEqual(r.reader.take(), expected);
    const copyData = msg('d', 'copy data');
    r.client.write(Buffer.concat([copyData, copyData, query('rows 1000')]));
    await r.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'rows 1000');
    r.client.write(TERMINATE);
    const { closed, observed } = await untilClosed(r.id);
    assert.equal(closed.error, null);
    const client = observed.filter((o) => o.client).map((o) => readObserve(o.client as Buffer));
    assert.deepEqual(
      client.flatMap((c) => c.types),
      ['Q', 'Q', 'X'],
    );
    assert.deepEqual(
      client.flatMap((c) => c.runs),
      [{ code: 'd', count: 2, bytes: 2 * copyData.length }],
    );
    const server = observed.filter((o) => o.server).map((o) => readObserve(o.server as Buffer));
    assert.ok(observed.every((o) => (o.client === null) !== (o.server === null) && o.hold === false));
    assert.deepEqual(server.flatMap((s) => s.types).join(''), 'SZTCZTCZ');
    const rows = server.flatMap((s) => s.runs).reduce((n, run) => (assert.equal(run.code, 'D'), n + run.count), 0);
    assert.equal(rows, 1003);
    const sent = query('rows 3').length + 2 * copyData.length + query('rows 1000').length + TERMINATE.length;
    assert.equal(closed.bytesFromClient, sent);
    assert.equal(closed.bytesToClient, expected.length + r.reader.buf.length);
    await r.reader.end();
  });

  it('relays to a server on TCP as well as on a Unix socket', async () => {
    const tcpServer = fakeServer(0);
    await new Promise((r) => tcpServer.once('listening', r));
    try {
      const c = await adoptPlain();
      addon.freeze(c.id);
      await expectEvent(c.id, 'frozen');
      const socket = net.connect((tcpServer.address() as net.AddressInfo).port, '127.0.0.1');
      await new Promise<void>((r) => socket.once('connect', () => r()));
      handleOf(socket).readStop();
      addon.relay(c.id, handleOf(socket).fd, options());
      socket.destroy();
      c.client.write(query('rows 7'));
      await c.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'rows 7');
      assert.equal(messages(c.reader.buf).list.filter(([t]) => t === 'D').length, 7);
      c.client.end();
      const closed = await expectEvent(c.id, 'closed');
      assert.equal(closed.error, null);
    } finally {
      tcpServer.close();
    }
  });

  it('hold: a server chunk with observed messages reaches the client only after release', async () => {
    const r = await relayed({ observe: true, hold: true });
    r.client.write(query('rows 2'));
    let e = await expectEvent(r.id, 'observe');
    assert.ok(e.client && !e.server);
    e = await expectEvent(r.id, 'observe');
    assert.ok(e.server && e.hold);
    await new Promise((res) => setTimeout(res, 150));
    assert.equal(r.reader.buf.length, 0, 'held');
    addon.release(r.id);
    await r.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'released');
    r.client.write(TERMINATE);
    assert.equal((await expectEvent(r.id, 'observe')).client?.[0], 'X'.charCodeAt(0));
    await expectEvent(r.id, 'closed');
  });

  it('terminate: the fatal at a message boundary, a plain close mid-message', async () => {
    const fatal = errorResponse('FATAL', 'terminated by the gateway');
    let r = await relayed();
    r.client.write(query('rows 1'));
    await r.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'rows 1');
    const before = r.reader.take();
    addon.terminate(r.id, fatal);
    let closed = await expectEvent(r.id, 'closed');
    assert.deepEqual(await r.reader.end(), fatal);
    assert.equal(closed.bytesToClient, before.length + fatal.length);

    r = await relayed();
    r.client.write(query('half'));
    await r.reader.until((b) => b.length >= 9 + 7, 'half');
    addon.terminate(r.id, fatal);
    closed = await expectEvent(r.id, 'closed');
    const got = await r.reader.end();
    assert.equal(got.length, 9 + 7, 'no fatal after half a message');
    assert.equal(closed.error, null);
  });

  it('destroy during the relay closes at once; end closes gracefully', async () => {
    for (const how of ['destroy', 'end'] as const) {
      const r = await relayed();
      r.client.write(query('rows 1'));
      await r.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'rows 1');
      const t0 = Date.now();
      addon[how](r.id);
      const closed = await expectEvent(r.id, 'closed');
      assert.equal(closed.error, null);
      await r.reader.end(1000);
      assert.ok(Date.now() - t0 < 1000, `${how}: the client saw the close in ${Date.now() - t0} ms`);
    }
  });

  it('serverGone when the server closes at a boundary; a FATAL from the server reaches the client instead', async () => {
    let r = await relayed({ serverGone: SERVER_GONE });
    r.client.write(query('rows 1'));
    await r.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'rows 1');
    r.reader.take();
    r.client.write(query('gone'));
    assert.deepEqual(await r.reader.end(), SERVER_GONE);
    let closed = await expectEvent(r.id, 'closed');
    assert.equal(closed.error, null);

    r = await relayed({ serverGone: SERVER_GONE });
    r.client.write(query('fatal'));
    const fatal = await r.reader.end();
    assert.deepEqual(
      messages(fatal).list.map(([t]) => t),
      ['E'],
    );
    assert.match(fatal.toString(), /administrator command/);
    closed = await expectEvent(r.id, 'closed');
    assert.equal(closed.bytesToClient, fatal.length);
  });

  it('pooled: reusable after ReadyForQuery I with the Terminate withheld and the server left open; not mid-query', async () => {
    let r = await relayed({ pooled: true });
    r.client.write(query('rows 2'));
    await r.reader.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'rows 2');
    r.client.write(TERMINATE);
    let closed = await expectEvent(r.id, 'closed');
    assert.equal(closed.reusable, true);
    assert.equal(closed.error, null);
    await r.reader.end();
    // The gateway's own descriptor still works: the server did not get the Terminate.
    const back = new Reader(r.server);
    handleOf(r.server).readStart();
    r.server.write(query('rows 1'));
    await back.until((b) => messages(b).list.some(([t]) => t === 'Z'), 'the server after the session');
    r.server.destroy();

    // A client that leaves at once, nothing relayed: the connection is as the greeting's
    // ReadyForQuery 'I' left it, reusable.
    r = await relayed({ pooled: true });
    r.client.write(TERMINATE);
    closed = await expectEvent(r.id, 'closed');
    assert.equal(closed.reusable, true);
    assert.equal(closed.bytesFromClient, 0);
    r.server.destroy();

    r = await relayed({ pooled: true });
    r.client.write(query('half'));
    await r.reader.until((b) => b.length >= 9 + 7, 'half');
    r.client.destroy();
    closed = await expectEvent(r.id, 'closed');
    assert.equal(closed.reusable, false);
    r.server.destroy();
  });

  it('a framing error closes both sides with an error, and the process goes on', async () => {
    const r = await relayed({ observe: true });
    r.client.write(query('garbage'));
    const { closed } = await untilClosed(r.id);
    assert.match(closed.error ?? '', /framing error/);
    await r.reader.end();
    // A client that sends a bad length: told clientFramingError, the server never gets the bytes.
    const words = msg('E', 'SFATAL\0C58030\0Mstopped\0\0');
    const c = await relayed({ clientFramingError: words });
    c.client.write(Buffer.from([0x51, 0, 0, 0, 2]));
    const closed2 = await expectEvent(c.id, 'closed');
    assert.match(closed2.error ?? '', /client framing error/);
    assert.deepEqual(await c.reader.end(), words);
    assert.equal(closed2.bytesToClient, words.length);
    assert.equal(closed2.bytesFromClient, 0);
  });

  it('relays a 50 MB result with bounded memory', async () => {
    const r = await relayed({ observe: true });
    const rss = process.memoryUsage().rss;
    let bytes = 0;
    let peak = rss;
    r.client.removeAllListeners('data');
    const done = new Promise<void>((resolve) =>
      r.client.on('data', (d: Buffer) => {
        bytes += d.length;
        peak = Math.max(peak, process.memoryUsage().rss);
        if (d.length >= 6 && d.subarray(d.length - 6).equals(ready())) resolve();
      }),
    );
    const rows = 50_000;
    r.client.write(query(`big ${rows}`));
    await done;
    const row = dataRow('x'.repeat(1000));
    assert.ok(bytes > 50_000_000, `${bytes} bytes`);
    r.client.write(TERMINATE);
    const { closed, observed } = await untilClosed(r.id, 20000);
    const counted = observed
      .filter((o) => o.server)
      .flatMap((o) => readObserve(o.server as Buffer).runs)
      .reduce((n, run) => n + run.count, 0);
    assert.equal(counted, Math.ceil(rows / 64) * 64);
    assert.equal(closed.bytesToClient, bytes);
    assert.ok(bytes >= counted * row.length);
    assert.ok(peak - rss < 64 * 1024 * 1024, `rss grew ${Math.round((peak - rss) / 1048576)} MiB`);
  });
});
