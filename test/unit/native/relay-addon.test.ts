// The native relay addon (native/relay, issue 22) against its contract (src/gateway/native/addon.ts),
// with real sockets: clients on 127.0.0.1 (Node's own TLS client), a small fake PostgreSQL server
// on a Unix socket in a temp dir. Skipped when the addon is not built (scripts/build-native.sh).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { type AddonEvent, DRAIN_ABOVE, loadRelayAddon, type RelayAddon, type RelayOptions } from '../../../src/gateway/native/addon.js';
import { makeCertificate, type TestCertificate } from '../auth/scram/certificates.js';

const loaded = loadRelayAddon();
const skip = loaded.addon ? false : `the native relay addon is not built (${loaded.reason})`;

// ---- PostgreSQL messages -------------------------------------------------------------------

function msg(type: string, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
}
const query = (sql: string) => msg('Q', `${sql}\0`);
const ready = (status = 'I') => msg('Z', status);
const complete = (tag: string) => msg('C', `${tag}\0`);
const dataRow = (value: string) => {
  const v = Buffer.from(value);
  const b = Buffer.alloc(6 + v.length);
  b.writeInt16BE(1, 0);
  b.writeInt32BE(v.length, 2);
  v.copy(b, 6);
  return msg('D', b);
};
const errorResponse = (severity: string, text: string) => msg('E', `S${severity}\0M${text}\0\0`);
const TERMINATE = msg('X');

/** Splits whole messages off a buffer: [type, message][] and the rest. */
function messages(buf: Buffer): { list: [string, Buffer][]; rest: Buffer } {
  const list: [string, Buffer][] = [];
  let i = 0;
  while (i + 5 <= buf.length) {
    const len = buf.readInt32BE(i + 1);
    if (i + 1 + len > buf.length) break;
    list.push([String.fromCharCode(buf[i]), buf.subarray(i, i + 1 + len)]);
    i += 1 + len;
  }
  return { list, rest: buf.subarray(i) };
}

/** An observe buffer: copied messages by type, and the run records summed. */
function readObserve(buf: Buffer): { types: string[]; runs: { code: string; count: number; bytes: number }[] } {
  const types: string[] = [];
  const runs: { code: string; count: number; bytes: number }[] = [];
  let i = 0;
  while (i < buf.length) {
    const len = buf.readInt32BE(i + 1);
    if (buf[i] === 0) {
      assert.equal(len, 16);
      runs.push({ code: String.fromCharCode(buf.readInt32BE(i + 5)), count: buf.readInt32BE(i + 9), bytes: buf.readInt32BE(i + 13) });
    } else types.push(String.fromCharCode(buf[i]));
    i += 1 + len;
  }
  assert.equal(i, buf.length, 'an observe buffer holds whole records');
  return { types, runs };
}

// ---- Events --------------------------------------------------------------------------------

const queues = new Map<number, AddonEvent[]>();
const waiters = new Map<number, () => void>();

function onEvent(e: AddonEvent): void {
  let q = queues.get(e.id);
  if (!q) queues.set(e.id, (q = []));
  q.push(e);
  waiters.get(e.id)?.();
}

/** The next event of `id` (all of them, in order). */
async function next(id: number, ms = 5000): Promise<AddonEvent> {
  const deadline = Date.now() + ms;
  for (;;) {
    const q = queues.get(id);
    if (q && q.length > 0) return q.shift() as AddonEvent;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no event for connection ${id} within ${ms} ms`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      waiters.set(id, () => {
        clearTimeout(t);
        resolve();
      });
    });
    waiters.delete(id);
  }
}

async function expectEvent<T extends AddonEvent['type']>(id: number, type: T, ms = 5000): Promise<Extract<AddonEvent, { type: T }>> {
  const e = await next(id, ms);
  assert.equal(e.type, type, `expected '${type}', got ${JSON.stringify(e, (_k, v) => (v?.type === 'Buffer' ? `<${v.data.length} bytes>` : v))}`);
  return e as Extract<AddonEvent, { type: T }>;
}

/** Collects the observe events of `id` until 'closed'; returns both. */
async function untilClosed(id: number, ms = 10000) {
  const observed: Extract<AddonEvent, { type: 'observe' }>[] = [];
  for (;;) {
    const e = await next(id, ms);
    if (e.type === 'observe') observed.push(e);
    else if (e.type === 'closed') return { closed: e, observed };
    else assert.fail(`unexpected event ${e.type}`);
  }
}

const noEvent = async (id: number, ms = 150) => {
  await new Promise((r) => setTimeout(r, ms));
  assert.deepEqual(queues.get(id) ?? [], [], 'no event');
};

// ---- Sockets -------------------------------------------------------------------------------

type Handle = { fd: number; readStop(): number; readStart(): number };
const handleOf = (s: net.Socket) => (s as unknown as { _handle: Handle })._handle;

/** Reads from a socket into a growing buffer; `until` waits for a condition on it. */
class Reader {
  buf: Buffer = Buffer.alloc(0);
  ended = false;
  error: Error | null = null;
  private wake: (() => void) | null = null;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', (e) => {
      this.error = e;
      this.ended = true;
      this.wake?.();
    });
  }
  async until(cond: (buf: Buffer) => boolean, what: string, ms = 5000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (!cond(this.buf)) {
      if (this.ended) throw new Error(`${what}: the socket ended first (${this.buf.length} bytes: ${this.buf.toString('latin1').slice(0, 80)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.buf;
  }
  async end(ms = 5000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the socket did not end');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.buf;
  }
  take(): Buffer {
    const b = this.buf;
    this.buf = Buffer.alloc(0);
    return b;
  }
}

let dir: string;
let addon: RelayAddon;
let cert: TestCertificate;
let listener: net.Server;
const accepted: net.Socket[] = [];
const acceptWaiters: ((s: net.Socket) => void)[] = [];

/** The next connection the listener accepts, not read from (pauseOnConnect). */
function accept(): Promise<net.Socket> {
  const s = accepted.shift();
  if (s) return Promise.resolve(s);
  return new Promise((resolve) => acceptWaiters.push(resolve));
}

/** Connects a client and adopts the gateway's side: returns the client socket and the id. */
async function adoptPlain(): Promise<{ client: net.Socket; reader: Reader; id: number }> {
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const reader = new Reader(client);
  const side = await accept();
  const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'none');
  side.destroy();
  await new Promise<void>((r) => (client.connecting ? client.once('connect', () => r()) : r()));
  return { client, reader, id };
}

// ---- The fake server -----------------------------------------------------------------------

/** Answers a few queries, enough to relay: 'rows N', 'big N', 'gone', 'fatal', 'half', 'garbage', 'copy'. */
function fakeServer(file: string | number): net.Server {
  const server = net.createServer((s) => {
    let buf: Buffer = Buffer.alloc(0);
    s.on('error', () => {});
    s.on('data', async (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const { list, rest } = messages(buf);
      buf = rest;
      for (const [type, m] of list) {
        if (type === 'X') {
          s.end();
          return;
        }
        if (type !== 'Q') continue;
        const sql = m.subarray(5, m.length - 1).toString();
        const [cmd, arg] = sql.split(' ');
        if (cmd === 'rows') {
          const n = Number(arg);
          const rows = Array.from({ length: n }, (_, i) => dataRow(`row ${i}`));
          s.write(Buffer.concat([msg('T', 'desc'), ...rows, complete(`SELECT ${n}`), ready()]));
        } else if (cmd === 'big') {
          s.pause();
          const row = dataRow('x'.repeat(1000));
          const perChunk = 64;
          const chunk = Buffer.concat(Array.from({ length: perChunk }, () => row));
          const chunks = Math.ceil(Number(arg) / perChunk);
          s.write(msg('T', 'desc'));
          for (let i = 0; i < chunks; i++) {
            if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
          }
          s.write(Buffer.concat([complete(`SELECT ${chunks * perChunk}`), ready()]));
          s.resume();
        } else if (cmd === 'gone') {
          s.destroy();
        } else if (cmd === 'fatal') {
          s.end(errorResponse('FATAL', 'terminating connection due to administrator command'));
        } else if (cmd === 'half') {
          // A DataRow's first half: the stream is mid-message until the rest comes.
          const row = dataRow('half a row');
          s.write(Buffer.concat([msg('T', 'desc'), row.subarray(0, 7)]));
        } else if (cmd === 'garbage') {
          s.write(Buffer.from([0x43, 0, 0, 0, 1, 0x41]));
        } else {
          s.write(Buffer.concat([complete('OK'), ready()]));
        }
      }
    });
  });
  if (typeof file === 'number') server.listen(file, '127.0.0.1');
  else server.listen(file);
  return server;
}

let serverFile: string;
let server: net.Server;

/** A connection to the fake server whose descriptor goes to the addon (not read by Node). */
async function serverSocket(): Promise<{ socket: net.Socket; fd: number }> {
  const socket = net.connect(serverFile);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  handleOf(socket).readStop();
  return { socket, fd: handleOf(socket).fd };
}

const options = (o: Partial<RelayOptions> = {}): RelayOptions => ({
  clientRest: Buffer.alloc(0),
  serverRest: Buffer.alloc(0),
  observe: false,
  hold: false,
  serverGone: Buffer.alloc(0),
  clientFramingError: Buffer.alloc(0),
  pooled: false,
  ...o,
});

/** A plaintext client relayed to the fake server. */
async function relayed(o: Partial<RelayOptions> = {}) {
  const c = await adoptPlain();
  addon.freeze(c.id);
  await expectEvent(c.id, 'frozen');
  const s = await serverSocket();
  addon.relay(c.id, s.fd, options(o));
  if (!o.pooled) s.socket.destroy();
  return { ...c, server: s.socket };
}

const SERVER_GONE = errorResponse('FATAL', 'the server closed the connection');

describe('native relay addon', { skip }, () => {
  before(async () => {
    addon = (loaded as { addon: RelayAddon }).addon;
    addon.start(2, onEvent);
    dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-relay-'));
    serverFile = path.join(dir, '.s.PGSQL.5432');
    server = fakeServer(serverFile);
    listener = net.createServer({ pauseOnConnect: true }, (s) => {
      const w = acceptWaiters.shift();
      if (w) w(s);
      else accepted.push(s);
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    cert = await makeCertificate('ecdsa-p256-sha256', 'db.example');
    addon.setCertificate(1, Buffer.from(cert.certPem), Buffer.from(cert.keyPem));
  });

  after(() => {
    listener.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

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

  it('a TLS session relayed: the answers over TLS, serverGone then close_notify', async () => {
    const client = tls.connect({
      port: (listener.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      ALPNProtocols: ['postgresql'],
      rejectUnauthorized: false,
    });
    const reader = new Reader(client);
    const side = await accept();
    const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'direct');
    side.destroy();
    await expectEvent(id, 'hello');
    addon.tlsAnswer(id, 1);
    await expectEvent(id, 'secure');
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

  it('write counts the bytes not on the socket yet; past DRAIN_ABOVE a drain follows once the client read them', async () => {
    const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
    const side = await accept();
    const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'none');
    side.destroy();
    await new Promise<void>((r) => (client.connecting ? client.once('connect', () => r()) : r()));
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
    await expectEvent(id, 'drain', 10_000);
    assert.equal(addon.write(id, Buffer.alloc(0)), 0);
    while (received < total) await new Promise((r) => setTimeout(r, 10));
    assert.equal(received, total);
    addon.destroy(id);
    await expectEvent(id, 'closed');
    client.destroy();
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
