// The JavaScript side of the native relay against a scripted addon (the contract of
// gateway/native/addon.ts): the client Duplex behaves like a socket, and step 9 hands the session
// over (freeze, relay with the rests), feeds the observer, releases held chunks once the audit is
// durable, ends the session and gives a pooled connection back.
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DRAIN_ABOVE, eventTaker, type AddonEvent, type RelayAddon, type RelayOptions } from '../../../src/gateway/native/addon.js';
import { NativeRelayHost } from '../../../src/gateway/native/host.js';
import { NativeClientSocket } from '../../../src/gateway/native/client-socket.js';
import { nativeRelay } from '../../../src/gateway/native/session-relay.js';
import { ObserverClock, SessionObserver, type BackendEvent, type FrontendEvent } from '../../../src/pgwire/index.js';
import { StatementAuditPolicies, startSessionAudit } from '../../../src/audit/statement-audit.js';
import type { StatementEvent } from '../../../src/audit/tap/index.js';
import { readyForQuery } from '../../../src/pgwire/backend.js';
import { MessageWriter } from '../../../src/pgwire/message-writer.js';

import { encodeEvents } from './native-events.js';

const ID = 7;

class ScriptedAddon implements RelayAddon {
  readonly calls: { name: string; args: unknown[] }[] = [];
  private onEvents: () => void = () => undefined;
  private batch: Buffer = Buffer.alloc(0);
  /** Plays the addon: the events go to the host as one batch, encoded as the addon does. */
  emit(...events: AddonEvent[]): void {
    this.stage(encodeEvents(events));
    this.onEvents();
  }
  /** The batch takeEvents gives next. */
  stage(batch: Buffer): void {
    this.batch = batch;
  }
  start(_threads: number, onEvents: () => void): void {
    this.onEvents = onEvents;
  }
  /** As the addon: into the host's buffer (used again for every batch) when the batch fits. */
  takeEvents(into: Buffer): number | Buffer {
    const batch = this.batch;
    this.batch = Buffer.alloc(0);
    if (batch.length > into.length) return batch;
    batch.copy(into);
    return batch.length;
  }
  /** The scripted addon's clock runs 5 s behind performance.now(). */
  monotonicMs(): number {
    return performance.now() - 5000;
  }
  backlogStats(): { waits: number; largest: number } {
    return { waits: 0, largest: 0 };
  }
  private log(name: string, ...args: unknown[]): void {
    this.calls.push({ name, args });
  }
  setCertificate(id: number): void {
    this.log('setCertificate', id);
  }
  dropCertificate(id: number): void {
    this.log('dropCertificate', id);
  }
  adopt(fd: number, prefix: Buffer, tls: string): number {
    this.log('adopt', fd, prefix, tls);
    return ID;
  }
  tlsAnswer(id: number, certId: number | null): void {
    this.log('tlsAnswer', id, certId);
  }
  /** What write() answers: the bytes the scripted addon has not written yet. */
  unwritten = 0;
  write(id: number, data: Buffer): number {
    this.log('write', id, data);
    return this.unwritten;
  }
  end(id: number): void {
    this.log('end', id);
  }
  destroy(id: number): void {
    this.log('destroy', id);
  }
  pause(id: number, paused: boolean): void {
    this.log('pause', id, paused);
  }
  freeze(id: number): void {
    this.log('freeze', id);
  }
  relay(id: number, fd: number, options: RelayOptions): void {
    this.log('relay', id, fd, options);
  }
  release(id: number): void {
    this.log('release', id);
  }
  terminate(id: number, fatal: Buffer): void {
    this.log('terminate', id, fatal);
  }
  private sets = 0;
  quietSet(): number {
    this.log('quietSet');
    return ++this.sets;
  }
  dropQuietSet(set: number): void {
    this.log('dropQuietSet', set);
  }
  quiet(set: number, key: Buffer): void {
    this.log('quiet', set, key);
  }
  named(name: string) {
    return this.calls.filter((c) => c.name === name);
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const closed = (o: Partial<Extract<AddonEvent, { type: 'closed' }>> = {}): AddonEvent => ({
  id: ID,
  type: 'closed',
  bytesFromClient: 0,
  bytesToClient: 0,
  reusable: false,
  error: null,
  ...o,
});

function setup() {
  const addon = new ScriptedAddon();
  const host = new NativeRelayHost(addon, 1);
  const client = new NativeClientSocket(host, 99, Buffer.from('hello'), 'starttls');
  return { addon, host, client };
}

/** A connected pair of Unix sockets: the server side of a session, and its peer. */
async function serverPair(): Promise<{ server: net.Socket; peer: net.Socket; done: () => void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgw-native-'));
  const file = path.join(dir, 's');
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(file, r));
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const server = net.connect(file);
  await new Promise((r) => server.once('connect', r));
  const peer = await accepted;
  return {
    server,
    peer,
    done: () => {
      peer.destroy();
      listener.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('the client Duplex: adopt with the prefix, data in order, writes and end through the addon', async () => {
  const { addon, client } = setup();
  assert.deepEqual(addon.named('adopt')[0]!.args, [99, Buffer.from('hello'), 'starttls']);
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  addon.emit({ id: ID, type: 'data', data: Buffer.from('ab') });
  addon.emit({ id: ID, type: 'data', data: Buffer.from('cd') });
  await tick();
  assert.equal(Buffer.concat(got).toString(), 'abcd');
  client.write(Buffer.from('xy'));
  client.end(Buffer.from('z'));
  await tick();
  assert.deepEqual(
    addon.calls.filter((c) => c.name === 'write' || c.name === 'end').map((c) => [c.name, String(c.args[1] ?? '')]),
    [
      ['write', 'xy'],
      ['write', 'z'],
      ['end', ''],
    ],
  );
  const ended = new Promise((r) => client.once('end', r));
  const closedEvent = new Promise((r) => client.once('close', r));
  addon.emit(closed());
  await ended;
  await closedEvent;
  assert.equal(addon.named('destroy').length, 0, 'the addon closed it: nothing to destroy');
});

test('a reset is an error on the Duplex, as on a socket; destroy() closes the connection', async () => {
  const { addon, client } = setup();
  const errors: Error[] = [];
  client.on('error', (e) => errors.push(e));
  const closedEvent = new Promise((r) => client.once('close', r));
  addon.emit(closed({ error: 'Connection reset by peer (os error 104)' }));
  await closedEvent;
  assert.deepEqual(
    errors.map((e) => e.message),
    ['Connection reset by peer (os error 104)'],
  );
  const other = setup();
  other.client.destroy();
  await tick();
  assert.equal(other.addon.named('destroy').length, 1);
});

test('backpressure: a full stream pauses the addon, reading resumes it', async () => {
  const { addon, client } = setup();
  client.pause();
  const chunk = Buffer.alloc(64 * 1024);
  addon.emit({ id: ID, type: 'data', data: chunk });
  assert.deepEqual(
    addon.named('pause').map((c) => c.args[1]),
    [true],
  );
  client.resume();
  await tick();
  assert.deepEqual(
    addon.named('pause').map((c) => c.args[1]),
    [true, false],
  );
});

test("write backpressure: past DRAIN_ABOVE unwritten, writes wait for the addon's drain", async () => {
  const { addon, client } = setup();
  addon.unwritten = DRAIN_ABOVE + 1;
  assert.equal(client.write(Buffer.alloc(10)), true, 'the first write is taken');
  assert.equal(client.write(Buffer.alloc(client.writableHighWaterMark)), false, 'the next ones wait: write() says so');
  await tick();
  assert.equal(addon.named('write').length, 1, 'nothing more goes to the addon before its drain');
  const drained = new Promise((r) => client.once('drain', r));
  addon.unwritten = 0;
  addon.emit({ id: ID, type: 'drain' });
  await drained;
  assert.equal(addon.named('write').length, 2);
});

test('step 9: freeze, the rests to the addon, observe fed to the observer, held chunks released once durable, the end', async () => {
  const { addon, client } = setup();
  const { server, done } = await serverPair();
  try {
    const front: FrontendEvent[] = [];
    const back: BackendEvent[] = [];
    const observer = new SessionObserver([{ frontend: (e) => front.push(e), backend: (e) => back.push(e) }], { skipRecords: true });
    let durable: () => void = () => undefined;
    let holds = 0;
    const ends: unknown[] = [];
    nativeRelay({
      client,
      server,
      clientRest: Buffer.from('A'),
      serverRest: Buffer.alloc(0),
      observer,
      hold: () => {
        holds++;
        return new Promise<void>((r) => (durable = r));
      },
      onEnd: (stats) => ends.push(stats),
    });
    await tick();
    assert.equal(addon.named('freeze').length, 1);
    addon.emit({ id: ID, type: 'data', data: Buffer.from('B') }); // after the Wire stopped: the client's rest
    addon.emit({ id: ID, type: 'frozen' });
    await tick();
    const relayCall = addon.named('relay')[0]!;
    const opts = relayCall.args[2] as RelayOptions;
    assert.equal(opts.clientRest.toString(), 'AB');
    assert.equal(opts.observe, true);
    assert.equal(opts.hold, true);
    assert.equal(opts.pooled, false);
    assert.equal(typeof relayCall.args[1], 'number');
    await tick();
    assert.equal(server.destroyed, true, 'the JavaScript server socket is closed (the addon has a duplicate)');

    const query = new MessageWriter().cstring('select 1').message('Q');
    const record = Buffer.alloc(17);
    record.writeInt32BE(16, 1);
    record.writeInt32BE(0x44, 5);
    record.writeInt32BE(3, 9);
    record.writeInt32BE(33, 13);
    const complete = new MessageWriter().cstring('SELECT 3').message('C');
    addon.emit({ id: ID, type: 'observe', client: query, clientAt: 1, server: null, serverAt: 0, hold: false });
    addon.emit({ id: ID, type: 'observe', client: null, clientAt: 0, server: Buffer.concat([record, complete, readyForQuery('I')]), serverAt: 2, hold: true });
    assert.deepEqual(front, [{ type: 'query', text: 'select 1', truncated: false }]);
    assert.deepEqual(back[0], { type: 'commandComplete', tag: 'SELECT', rows: 3, dataRows: 3, copyBytes: 0 });
    assert.equal(holds, 1);
    await tick();
    assert.equal(addon.named('release').length, 0, 'held until the audit is durable');
    durable();
    await tick();
    assert.equal(addon.named('release').length, 1);

    addon.emit(closed({ bytesFromClient: 16, bytesToClient: 40 }));
    assert.deepEqual(ends, [{ bytesFromClient: 16, bytesToClient: 40 }]);
  } finally {
    done();
  }
});

test("statements are timed by the addon's reads, not by when JavaScript takes the batch", async () => {
  const { addon, client } = setup();
  const { server, done } = await serverPair();
  try {
    const config = new StatementAuditPolicies().forServer('s', { classes: ['READ'], logParameters: false, redact: [], retentionDays: 1 })!;
    const clock = new ObserverClock();
    const statements: StatementEvent[] = [];
    const audit = startSessionAudit(config, (st) => statements.push(st), assert.fail, clock.now);
    nativeRelay({
      client,
      server,
      clientRest: Buffer.alloc(0),
      serverRest: Buffer.alloc(0),
      observer: new SessionObserver([audit], { skipRecords: true }),
      clock,
      onEnd: () => undefined,
    });
    addon.emit({ id: ID, type: 'frozen' });
    await tick();
    const answer = (tag: string) => Buffer.concat([new MessageWriter().cstring(tag).message('C'), readyForQuery('I')]);
    const query = (text: string) => new MessageWriter().cstring(text).message('Q');
    // A query and its answer 42.5 ms later in the addon's clock, handed over in one batch; then a
    // query read with its answer in one event (a quiet statement's failure is handed over so).
    addon.emit(
      { id: ID, type: 'observe', client: query('select 1'), clientAt: 1000, server: null, serverAt: 0, hold: false },
      { id: ID, type: 'observe', client: null, clientAt: 0, server: answer('SELECT 1'), serverAt: 1042.5, hold: false },
    );
    addon.emit({ id: ID, type: 'observe', client: query('select 2'), clientAt: 2000, server: answer('SELECT 1'), serverAt: 2000.25, hold: false });
    assert.deepEqual(
      statements.map((st) => [st.text, Math.round(st.durationMs * 1e6) / 1e6]),
      [
        ['select 1', 42.5],
        ['select 2', 0.25],
      ],
    );
    // Between events the clock is now again (a statement the session's end leaves unanswered).
    assert.ok(Math.abs(clock.now() - performance.now()) < 50);
    assert.ok(Math.abs(clock.wallMs() - Date.now()) < 50);
    // On the wall clock, a time the addon read half a second ago is half a second ago.
    clock.set(performance.now() - 500);
    assert.ok(Math.abs(clock.wallMs() - (Date.now() - 500)) < 50);
    clock.set(null);
  } finally {
    done();
  }
});

test('terminate writes the FATAL through the addon; a pooled connection goes back idle or broken as the addon says', async () => {
  const { addon, client } = setup();
  const { server, peer, done } = await serverPair();
  try {
    const released: string[] = [];
    const handle = nativeRelay({
      client,
      server,
      clientRest: Buffer.alloc(0),
      serverRest: Buffer.alloc(0),
      observer: null,
      pooled: { release: (state) => released.push(state) },
      onEnd: () => undefined,
    });
    addon.emit({ id: ID, type: 'frozen' });
    await tick();
    assert.equal((addon.named('relay')[0]!.args[2] as RelayOptions).pooled, true);
    assert.equal((addon.named('relay')[0]!.args[2] as RelayOptions).observe, false);
    assert.equal(server.destroyed, false, 'a pooled socket stays the pool’s');
    handle.terminate({ sqlstate: '57P01', message: 'terminating connection because public network access was disabled for this server' });
    const fatal = addon.named('terminate')[0]!.args[1] as Buffer;
    assert.equal(fatal[0], 0x45);
    assert.match(fatal.toString('latin1'), /57P01/);
    addon.emit(closed({ reusable: false, bytesFromClient: 10 }));
    assert.deepEqual(released, ['broken']);
    // The pool reads the socket again when it lends it: data from the server reaches it.
    const seen = new Promise<Buffer>((r) => server.once('data', r));
    server.resume();
    peer.write('Z');
    assert.equal((await seen).toString(), 'Z');
  } finally {
    server.destroy();
    done();
  }
});

test('the client gone before the relay started: no relay, the connection given back, the session ended', async () => {
  const { addon, client } = setup();
  const { server, done } = await serverPair();
  try {
    const released: string[] = [];
    const ends: unknown[] = [];
    nativeRelay({
      client,
      server,
      clientRest: Buffer.alloc(0),
      serverRest: Buffer.alloc(0),
      observer: null,
      pooled: { release: (state) => released.push(state) },
      onEnd: (s) => ends.push(s),
    });
    addon.emit(closed());
    await tick();
    assert.equal(addon.named('relay').length, 0);
    assert.deepEqual(released, ['idle']);
    assert.equal(ends.length, 1);
  } finally {
    server.destroy();
    done();
  }
});

test('eventTaker: a batch larger than its buffer comes whole, and the buffer grows to take the next such one', () => {
  const addon = new ScriptedAddon();
  const take = eventTaker(addon);
  const small = Buffer.from('small batch');
  const large = Buffer.alloc(300 * 1024, 7);
  const given = (batch: Buffer) => {
    addon.stage(batch);
    return take();
  };
  assert.deepEqual(given(small), small);
  const first = given(large);
  assert.equal(first, large, 'did not fit: handed over as it is');
  const second = given(Buffer.from(large));
  assert.deepEqual(second, large);
  assert.notEqual(second.buffer, large.buffer, 'fits now: copied into the grown buffer');
  assert.deepEqual(given(small), small);
});
