// The shared harness of the native relay addon's tests (relay-addon-handshake.test.ts,
// relay-addon-relay.test.ts): PostgreSQL messages, the addon's events per connection, real
// sockets (clients on 127.0.0.1, Node's own TLS client) and a small fake PostgreSQL server on a
// Unix socket in a temp dir. The test files call setUpAddon() and tearDownAddon() in their own
// before and after hooks; importing this registers nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type AddonEvent, decodeEvents, eventTaker, loadRelayAddon, type RelayAddon, type RelayOptions } from '../../../src/gateway/native/addon.js';
import { makeCertificate, type TestCertificate } from '../auth/scram/certificates.js';

const loaded = loadRelayAddon();
/** The tests are skipped when the addon is not built (scripts/build-native.sh). */
export const skip = loaded.addon ? false : `the native relay addon is not built (${loaded.reason})`;

// ---- PostgreSQL messages -------------------------------------------------------------------

export function msg(type: string, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
}
export const query = (sql: string) => msg('Q', `${sql}\0`);
export const ready = (status = 'I') => msg('Z', status);
export const complete = (tag: string) => msg('C', `${tag}\0`);
export const dataRow = (value: string) => {
  const v = Buffer.from(value);
  const b = Buffer.alloc(6 + v.length);
  b.writeInt16BE(1, 0);
  b.writeInt32BE(v.length, 2);
  v.copy(b, 6);
  return msg('D', b);
};
export const errorResponse = (severity: string, text: string) => msg('E', `S${severity}\0M${text}\0\0`);
export const TERMINATE = msg('X');

/** Splits whole messages off a buffer: [type, message][] and the rest. */
export function messages(buf: Buffer): { list: [string, Buffer][]; rest: Buffer } {
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
export function readObserve(buf: Buffer): { types: string[]; runs: { code: string; count: number; bytes: number }[] } {
  const types: string[] = [];
  const runs: { code: string; count: number; bytes: number }[] = [];
  let i = 0;
  while (i < buf.length) {
    const len = buf.readInt32BE(i + 1);
    if (buf[i] === 0 && len === 24) {
      types.push('key');
    } else if (buf[i] === 0 && len === 8) {
      types.push('unnamed');
    } else if (buf[i] === 0) {
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
export async function next(id: number, ms = 5000): Promise<AddonEvent> {
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

export async function expectEvent<T extends AddonEvent['type']>(id: number, type: T, ms = 5000): Promise<Extract<AddonEvent, { type: T }>> {
  const e = await next(id, ms);
  assert.equal(e.type, type, `expected '${type}', got ${JSON.stringify(e, (_k, v) => (v?.type === 'Buffer' ? `<${v.data.length} bytes>` : v))}`);
  return e as Extract<AddonEvent, { type: T }>;
}

/** Collects the observe events of `id` until 'closed'; returns both. */
export async function untilClosed(id: number, ms = 10000) {
  const observed: Extract<AddonEvent, { type: 'observe' }>[] = [];
  for (;;) {
    const e = await next(id, ms);
    if (e.type === 'observe') observed.push(e);
    else if (e.type === 'closed') return { closed: e, observed };
    else assert.fail(`unexpected event ${e.type}`);
  }
}

export const noEvent = async (id: number, ms = 150) => {
  await new Promise((r) => setTimeout(r, ms));
  assert.deepEqual(queues.get(id) ?? [], [], 'no event');
};

// ---- Sockets -------------------------------------------------------------------------------

type Handle = { fd: number; readStop(): number; readStart(): number };
export const handleOf = (s: net.Socket) => (s as unknown as { _handle: Handle })._handle;

/** Reads from a socket into a growing buffer; `until` waits for a condition on it. */
export class Reader {
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
export let addon: RelayAddon;
export let cert: TestCertificate;
export let listener: net.Server;
const accepted: net.Socket[] = [];
const acceptWaiters: ((s: net.Socket) => void)[] = [];

/** The next connection the listener accepts, not read from (pauseOnConnect). */
export function accept(): Promise<net.Socket> {
  const s = accepted.shift();
  if (s) return Promise.resolve(s);
  return new Promise((resolve) => acceptWaiters.push(resolve));
}

/** Connects a client and adopts the gateway's side: returns the client socket and the id. */
export async function adoptPlain(): Promise<{ client: net.Socket; reader: Reader; id: number }> {
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const reader = new Reader(client);
  const side = await accept();
  const id = addon.adopt(handleOf(side).fd, Buffer.alloc(0), 'none');
  side.destroy();
  await new Promise<void>((r) => (client.connecting ? client.once('connect', () => r()) : r()));
  return { client, reader, id };
}

// ---- The fake server -----------------------------------------------------------------------

/** Answers a few queries, enough to relay: 'rows N', 'big N', 'gone', 'fatal', 'error N', 'half', 'garbage', 'copy'. */
export function fakeServer(file: string | number): net.Server {
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
        } else if (cmd === 'error') {
          s.write(Buffer.concat([errorResponse('ERROR', `error ${arg}`), ready()]));
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
export async function serverSocket(): Promise<{ socket: net.Socket; fd: number }> {
  const socket = net.connect(serverFile);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  handleOf(socket).readStop();
  return { socket, fd: handleOf(socket).fd };
}

export const options = (o: Partial<RelayOptions> = {}): RelayOptions => ({
  clientRest: Buffer.alloc(0),
  serverRest: Buffer.alloc(0),
  observe: false,
  hold: false,
  serverGone: Buffer.alloc(0),
  clientFramingError: Buffer.alloc(0),
  pooled: false,
  quietSet: 0,
  ...o,
});

/** A plaintext client relayed to the fake server. */
export async function relayed(o: Partial<RelayOptions> = {}) {
  const c = await adoptPlain();
  addon.freeze(c.id);
  await expectEvent(c.id, 'frozen');
  const s = await serverSocket();
  addon.relay(c.id, s.fd, options(o));
  if (!o.pooled) s.socket.destroy();
  return { ...c, server: s.socket };
}

export const SERVER_GONE = errorResponse('FATAL', 'the server closed the connection');

/** The addon started (with `backlogBytes`, if given: the first start of the process sets it), the
 * fake server and the client listener up, certificate 1 loaded. */
export async function setUpAddon(backlogBytes?: number): Promise<void> {
  addon = (loaded as { addon: RelayAddon }).addon;
  const take = eventTaker(addon);
  addon.start(2, () => decodeEvents(take(), onEvent), backlogBytes);
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
}

export function tearDownAddon(): void {
  listener.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
