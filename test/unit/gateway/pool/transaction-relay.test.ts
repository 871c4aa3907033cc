// The transaction-mode relay over in-memory streams: a fake server that speaks enough of the
// protocol (statements, portals, errors skipping to Sync, transaction status, COPY) behind a
// fake pool, and clients that see what a PostgreSQL client would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { duplexPair } from '../handshake/duplex-pair.js';
import { SessionObserver, type BackendEvent, type FrontendEvent } from '../../../../src/pgwire/index.js';
import {
  LISTEN_MESSAGE,
  startTransactionSession,
  startTransactionSessionWith,
  type TransactionSession,
} from '../../../../src/gateway/pool/transaction-relay.js';
import { PoolWaitError, type Lender, type ReturnState, type ServerConnection } from '../../../../src/gateway/pool/types.js';

// ---- wire helpers

function msg(type: string, ...parts: (string | Buffer | number[])[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(`${p}\0`) : Buffer.isBuffer(p) ? p : Buffer.from(p))));
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
const int16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const parse = (name: string, text: string) => msg('P', name, text, int16(0));
const bind = (portal: string, stmt: string) => msg('B', portal, stmt, int16(0), int16(0), int16(0));
const describe = (kind: 'S' | 'P', name: string) => msg('D', Buffer.from(kind), name);
const execute = (portal = '') => msg('E', portal, [0, 0, 0, 0]);
const close = (kind: 'S' | 'P', name: string) => msg('C', Buffer.from(kind), name);
const sync = () => msg('S');
const flush = () => msg('H');
const query = (text: string) => msg('Q', text);
const copyData = (text: string) => msg('d', Buffer.from(text));
const copyDone = () => msg('c');
const terminate = () => msg('X');

interface Message {
  type: string;
  body: Buffer;
}

/** Splits a stream's bytes into messages. */
function split(buf: Buffer): { messages: Message[]; rest: Buffer } {
  const messages: Message[] = [];
  let i = 0;
  while (buf.length - i >= 5) {
    const len = buf.readInt32BE(i + 1);
    if (buf.length - i < 1 + len) break;
    messages.push({ type: String.fromCharCode(buf[i]!), body: buf.subarray(i + 5, i + 1 + len) });
    i += 1 + len;
  }
  return { messages, rest: buf.subarray(i) };
}

function cstrings(body: Buffer): string[] {
  return body
    .toString('utf8')
    .split('\0')
    .filter((s, i, a) => i < a.length - 1 || s !== '');
}

function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    out[code] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

// ---- a fake PostgreSQL backend

class FakeBackend {
  readonly statements = new Map<string, string>();
  readonly portals = new Map<string, string>();
  /** Every message received, as 'P:name:text', 'B:portal:stmt', 'D:S:name', 'C:S:name', 'E', 'S', 'Q:text'... */
  readonly log: string[] = [];
  status = 'I';
  private skipping = false;
  private copyIn: 'simple' | 'extended' | null = null;
  private copyRows = 0;
  private buf = Buffer.alloc(0);

  constructor(readonly socket: Duplex) {
    socket.on('data', (c: Buffer) => this.data(c));
  }

  /** Answers one byte per chunk (every framing state of the relay's server side). */
  dribble = false;

  private send(...bufs: Buffer[]): void {
    const all = Buffer.concat(bufs);
    if (!this.dribble) this.socket.write(all);
    else for (let i = 0; i < all.length; i++) this.socket.write(all.subarray(i, i + 1));
  }

  private error(sqlstate: string, message: string): Buffer {
    return msg('E', Buffer.from(`SERROR\0C${sqlstate}\0M${message}\0\0`));
  }

  private fail(sqlstate: string, message: string): void {
    this.send(this.error(sqlstate, message));
    if (this.status === 'T') this.status = 'E';
    this.skipping = true;
  }

  private data(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    const { messages, rest } = split(this.buf);
    this.buf = Buffer.from(rest);
    for (const m of messages) this.message(m);
  }

  private message(m: Message): void {
    const s = cstrings(m.body);
    if (this.copyIn !== null) {
      if (m.type === 'd') this.copyRows++;
      else if (m.type === 'c') {
        const mode = this.copyIn;
        this.copyIn = null;
        this.send(msg('C', `COPY ${this.copyRows}`));
        if (mode === 'simple') this.send(msg('Z', Buffer.from(this.status)));
      }
      // Sync and Flush are ignored in copy-in mode.
      return;
    }
    switch (m.type) {
      case 'P':
        this.log.push(`P:${s[0]}:${s[1]}`);
        break;
      case 'B':
        this.log.push(`B:${s[0]}:${s[1]}`);
        break;
      case 'D':
      case 'C':
        this.log.push(`${m.type}:${m.body.toString('latin1', 0, 1)}:${cstrings(m.body.subarray(1))[0]}`);
        break;
      case 'Q':
        this.log.push(`Q:${s[0]}`);
        break;
      default:
        this.log.push(m.type);
    }
    if (m.type === 'S') {
      this.skipping = false;
      this.send(msg('Z', Buffer.from(this.status)));
      return;
    }
    if (m.type === 'X') return;
    if (this.skipping && m.type !== 'Q') return;
    switch (m.type) {
      case 'P': {
        const [name, text] = s as [string, string];
        if (this.status === 'E') return this.fail('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
        if (name !== '' && this.statements.has(name)) return this.fail('42P05', `prepared statement "${name}" already exists`);
        if (text.startsWith('FAIL')) return this.fail('42601', 'syntax error');
        this.statements.set(name, text);
        this.send(msg('1'));
        return;
      }
      case 'B': {
        const [portal, stmt] = s as [string, string];
        const text = this.statements.get(stmt);
        if (text === undefined) return this.fail('26000', `prepared statement "${stmt}" does not exist`);
        if (this.status === 'E') return this.fail('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
        this.portals.set(portal, text);
        this.send(msg('2'));
        return;
      }
      case 'D': {
        const name = cstrings(m.body.subarray(1))[0] ?? '';
        const text = m.body[0] === 0x53 ? this.statements.get(name) : this.portals.get(name);
        if (text === undefined) return this.fail('26000', `prepared statement "${name}" does not exist`);
        if (m.body[0] === 0x53) this.send(msg('t', int16(0)));
        this.send(text.startsWith('SELECT') ? rowDescription() : msg('n'));
        return;
      }
      case 'C': {
        const name = cstrings(m.body.subarray(1))[0] ?? '';
        if (m.body[0] === 0x53) this.statements.delete(name);
        else this.portals.delete(name);
        this.send(msg('3'));
        return;
      }
      case 'E': {
        const text = this.portals.get(s[0] ?? '');
        if (text === undefined) return this.fail('34000', 'portal does not exist');
        this.run(text, 'extended');
        return;
      }
      case 'Q': {
        this.skipping = false;
        for (const stmt of (s[0] ?? '').split(';').map((x) => x.trim())) {
          if (stmt === '') continue;
          if (!this.run(stmt, 'simple')) break;
          if (this.copyIn !== null) return;
        }
        this.skipping = false;
        this.send(msg('Z', Buffer.from(this.status)));
        return;
      }
    }
  }

  /** Runs one statement; false when it failed. */
  private run(text: string, mode: 'simple' | 'extended'): boolean {
    if (this.status === 'E' && text !== 'ROLLBACK' && text !== 'COMMIT') {
      this.fail('25P02', 'current transaction is aborted, commands ignored until end of transaction block');
      return false;
    }
    if (text.startsWith('SELECT ERROR')) {
      this.fail('22012', 'division by zero');
      return false;
    }
    if (text.startsWith('DO ') && text.includes("RAISE EXCEPTION USING ERRCODE = '0A000'")) {
      this.fail('0A000', LISTEN_MESSAGE);
      return false;
    }
    if (text.startsWith('SET LOCAL application_name = ')) {
      this.send(msg('S', 'application_name', text.slice(29)), msg('C', 'SET'));
      return true;
    }
    if (text === 'BEGIN') {
      this.status = 'T';
      this.send(msg('C', 'BEGIN'));
    } else if (text === 'COMMIT' || text === 'ROLLBACK') {
      this.status = 'I';
      this.send(msg('C', text));
    } else if (text.startsWith('SELECT')) {
      const v = text.slice(7);
      // Execute sends no RowDescription (Describe does).
      if (mode === 'simple') this.send(rowDescription());
      this.send(msg('D', int16(1), [0, 0, 0, v.length], Buffer.from(v)), msg('C', 'SELECT 1'));
    } else if (text === 'COPY t FROM STDIN') {
      this.copyIn = mode;
      this.copyRows = 0;
      this.send(msg('G', [0], int16(0)));
    } else if (text === 'COPY t TO STDOUT') {
      this.send(msg('H', [0], int16(0)), msg('d', Buffer.from('a\n')), msg('d', Buffer.from('b\n')), msg('c'), msg('C', 'COPY 2'));
    } else this.send(msg('C', 'OK'));
    return true;
  }
}

function rowDescription(): Buffer {
  return msg('T', int16(1), 'v', [0, 0, 0, 0], int16(0), [0, 0, 0, 25], int16(-1), [0xff, 0xff, 0xff, 0xff], int16(0));
}

// ---- a fake pool

class FakePool implements Lender {
  readonly conns: ServerConnection[] = [];
  readonly backends: FakeBackend[] = [];
  readonly idle: ServerConnection[] = [];
  readonly waiting: ((c: ServerConnection) => void)[] = [];
  readonly returns: string[] = [];
  failWith: PoolWaitError | null = null;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const [gatewaySide, serverSide] = duplexPair();
      const conn: ServerConnection = {
        id: i + 1,
        socket: gatewaySide as unknown as net.Socket,
        processId: 1000 + i,
        secretKey: Buffer.alloc(4),
        parameters: new Map(),
        prepared: new Set(),
        rest: Buffer.alloc(0),
      };
      this.conns.push(conn);
      this.backends.push(new FakeBackend(serverSide));
      this.idle.push(conn);
    }
  }

  acquire(): Promise<ServerConnection> {
    if (this.failWith) return Promise.reject(this.failWith);
    const c = this.idle.shift();
    if (c) return Promise.resolve(c);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(conn: ServerConnection, state: ReturnState): void {
    this.returns.push(`${conn.id}:${state}`);
    if (state === 'broken') return;
    const next = this.waiting.shift();
    if (next) next(conn);
    else this.idle.push(conn);
  }

  backend(conn: ServerConnection | number): FakeBackend {
    return this.backends[(typeof conn === 'number' ? conn : conn.id) - 1]!;
  }
}

// ---- a client

class Client {
  readonly socket: Duplex;
  readonly session: TransactionSession;
  private buf = Buffer.alloc(0);
  readonly received: Message[] = [];
  private waiter: (() => void) | null = null;
  ended = false;
  endStats: { bytesFromClient: number; bytesToClient: number } | null = null;
  readonly lent: number[] = [];
  readonly frontend: FrontendEvent[] = [];
  readonly backend: BackendEvent[] = [];

  /** Sends one byte per chunk. */
  dribble = false;
  /** Sends chunks of this many bytes (0: as given). */
  chunkSize = 0;

  constructor(
    readonly pool: FakePool,
    limits?: { perServer: number; perClient: number },
    hold?: () => Promise<void> | null,
  ) {
    const [clientSide, gatewaySide] = duplexPair();
    this.socket = clientSide;
    const observer = new SessionObserver([{ frontend: (e) => this.frontend.push(e), backend: (e) => this.backend.push(e) }]);
    const opts = {
      client: gatewaySide,
      clientRest: Buffer.alloc(0),
      lender: pool,
      observer,
      ...(hold ? { hold } : {}),
      onLend: (c: ServerConnection) => this.lent.push(c.id),
      onEnd: (s: { bytesFromClient: number; bytesToClient: number }) => {
        this.endStats = s;
      },
    };
    this.session = limits ? startTransactionSessionWith(opts, limits) : startTransactionSession(opts);
    clientSide.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      const { messages, rest } = split(this.buf);
      this.buf = Buffer.from(rest);
      this.received.push(...messages);
      this.waiter?.();
    });
    clientSide.on('end', () => {
      this.ended = true;
      this.waiter?.();
      clientSide.end();
    });
  }

  send(...bufs: Buffer[]): void {
    const all = Buffer.concat(bufs);
    const size = this.dribble ? 1 : this.chunkSize || all.length;
    for (let i = 0; i < all.length; i += size) this.socket.write(all.subarray(i, i + size));
  }

  /** Waits until `n` ReadyForQuery messages have arrived in all (or the stream ended). */
  async readies(n: number): Promise<void> {
    while (this.received.filter((m) => m.type === 'Z').length < n && !this.ended) {
      await new Promise<void>((r) => {
        this.waiter = r;
      });
    }
  }

  async end(): Promise<void> {
    while (!this.ended) await new Promise<void>((r) => (this.waiter = r));
  }

  /** The received messages as letters, errors as E(sqlstate), ReadyForQuery as Z(status). */
  get trace(): string {
    return this.received.map((m) => (m.type === 'E' ? `E(${errorFields(m.body).C})` : m.type === 'Z' ? `Z(${m.body.toString('latin1')})` : m.type)).join(' ');
  }

  errors(): Record<string, string>[] {
    return this.received.filter((m) => m.type === 'E').map((m) => errorFields(m.body));
  }
}

// ---- tests

test('pipelined extended queries with the same statement names, on two server connections', async () => {
  const pool = new FakePool(2);
  const a = new Client(pool);
  const b = new Client(pool);
  const pipeline = (v: string) => [parse('s1', `SELECT ${v}`), bind('', 's1'), describe('P', ''), execute(), sync(), bind('', 's1'), execute(), sync()];
  // Both hold a connection at once: each is in a transaction.
  a.send(query('BEGIN'));
  b.send(query('BEGIN'));
  await a.readies(1);
  await b.readies(1);
  a.send(...pipeline('1'));
  b.send(...pipeline('1'));
  await a.readies(3);
  await b.readies(3);
  assert.equal(a.trace, 'C Z(T) 1 2 T D C Z(T) 2 D C Z(T)');
  assert.equal(b.trace, 'C Z(T) 1 2 T D C Z(T) 2 D C Z(T)');
  assert.deepEqual(a.lent, [1]);
  assert.deepEqual(b.lent, [2]);
  // Both servers got the statement under the gateway's name, the same on both.
  const names = pool.backends.map((be) => be.log.find((l) => l.startsWith('P:'))?.split(':')[1]);
  assert.match(names[0]!, /^pgw_[0-9a-f]{32}$/);
  assert.equal(names[0], names[1]);
  assert.deepEqual(
    pool.backends[0]!.log.filter((l) => l.startsWith('B:')),
    [`B::${names[0]}`, `B::${names[0]}`],
  );
  // What the client sent is what the observer saw, under the client's own name.
  assert.deepEqual(
    a.frontend.filter((e) => e.type === 'parse').map((e) => (e as { name: string }).name),
    ['s1'],
  );
});

test('a statement prepared on a connection by one client is bound there by another without a new Parse', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('q', 'SELECT 7'), sync());
  await a.readies(1);
  assert.equal(a.trace, '1 Z(I)');
  assert.equal(a.session.current(), null); // given back at 'I'
  const b = new Client(pool);
  b.send(parse('mine', 'SELECT 7'), bind('', 'mine'), execute(), sync());
  await b.readies(1);
  assert.equal(b.trace, '1 2 D C Z(I)');
  const log = pool.backends[0]!.log;
  assert.equal(log.filter((l) => l.startsWith('P:')).length, 1, log.join(' '));
  assert.deepEqual(pool.returns, ['1:idle', '1:idle']);
});

test('a statement bound on a connection that lacks it: the Parse is inserted and its ParseComplete not sent', async () => {
  const pool = new FakePool(2);
  const holder = new Client(pool);
  const a = new Client(pool);
  holder.send(query('BEGIN')); // connection 1
  await holder.readies(1);
  a.send(parse('s', 'SELECT 5'), sync()); // prepared on connection 2, given back
  await a.readies(1);
  holder.send(query('COMMIT'));
  await holder.readies(2);
  const holder2 = new Client(pool);
  holder2.send(query('BEGIN')); // connection 2
  await holder2.readies(1);
  a.send(bind('', 's'), execute(), describe('S', 's'), sync());
  await a.readies(2);
  assert.equal(a.trace, '1 Z(I) 2 D C t T Z(I)');
  assert.deepEqual(a.lent, [2, 1]);
  assert.deepEqual(
    pool.backends[0]!.log.map((l) => l.split(':')[0]),
    ['Q', 'Q', 'P', 'B', 'E', 'D', 'S'],
  );
});

test('Close then re-Parse of a name; a Parse of a name in use gets 42P05 and the messages up to Sync are dropped', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('s', 'SELECT 1'), sync());
  await a.readies(1);
  a.send(parse('s', 'SELECT 2'), bind('', 's'), execute(), sync());
  await a.readies(2);
  assert.equal(a.trace, '1 Z(I) E(42P05) Z(I)');
  assert.equal(a.errors()[0]!.M, 'prepared statement "s" already exists');
  a.send(close('S', 's'), parse('s', 'SELECT 2'), bind('', 's'), execute(), sync());
  await a.readies(3);
  assert.equal(a.trace, '1 Z(I) E(42P05) Z(I) 3 1 2 D C Z(I)');
  const log = pool.backends[0]!.log;
  // The server never saw the failed Parse, the Bind after it, nor a Close of the shared statement.
  assert.deepEqual(
    log.map((l) => l.split(':')[0]),
    ['P', 'S', 'S', 'P', 'B', 'E', 'S'],
  );
  const row = a.received.filter((m) => m.type === 'D').at(-1)!;
  assert.equal(row.body.toString('latin1', 6), '2');
});

test('an error in the middle of a pipeline: later answers dropped up to Sync, no synthetic ParseComplete after it', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('s', 'SELECT 1'), sync());
  await a.readies(1);
  // 'bad' fails at the server; the Parse of 's2' (which the connection has) would be answered
  // by the gateway, but the server would have skipped it.
  const other = new Client(pool);
  other.send(parse('x', 'SELECT 9'), sync());
  await other.readies(1);
  a.send(parse('bad', 'FAIL'), bind('', 'bad'), execute(), parse('s2', 'SELECT 9'), bind('', 's'), execute(), sync());
  await a.readies(2);
  // Nothing after the error took effect: 's2' is not defined, 'bad' neither.
  a.send(parse('s2', 'SELECT 9'), bind('', 's2'), execute(), sync(), parse('bad', 'SELECT 8'), sync());
  await a.readies(4);
  assert.equal(a.trace, '1 Z(I) E(42601) Z(I) 1 2 D C Z(I) 1 Z(I)');
});

test('a simple Query with several statements, and an error inside it', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('SELECT 1; SELECT 2; SELECT ERROR; SELECT 3'));
  await a.readies(1);
  assert.equal(a.trace, 'T D C T D C E(22012) Z(I)');
  assert.deepEqual(pool.returns, ['1:idle']);
});

test('BEGIN…COMMIT over several messages keeps one connection; it is given back only at I', async () => {
  const pool = new FakePool(2);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  assert.equal(a.session.current()?.id, 1);
  a.send(parse('s', 'SELECT 1'), bind('', 's'), execute(), sync());
  await a.readies(2);
  a.send(query('SELECT ERROR'));
  await a.readies(3);
  assert.equal(a.session.current()?.id, 1, 'kept in a failed transaction (E)');
  a.send(query('ROLLBACK'));
  await a.readies(4);
  assert.equal(a.trace, 'C Z(T) 1 2 D C Z(T) E(22012) Z(E) C Z(I)');
  assert.equal(a.session.current(), null);
  assert.deepEqual(a.lent, [1]);
  assert.deepEqual(pool.returns, ['1:idle']);
});

test('Flush without Sync keeps the connection until the Sync', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(parse('s', 'SELECT 1'), describe('S', 's'), flush());
  while (a.received.length < 3) await new Promise((r) => setImmediate(r));
  assert.equal(a.trace, '1 t T');
  assert.equal(a.session.current()?.id, 1);
  a.send(sync());
  await a.readies(1);
  assert.equal(a.session.current(), null);
  const log = pool.backends[0]!.log;
  assert.match(log[1]!, /^D:S:pgw_/);
});

test('COPY FROM STDIN and COPY TO STDOUT, simple and extended', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('COPY t FROM STDIN'));
  while (!a.received.some((m) => m.type === 'G')) await new Promise((r) => setImmediate(r));
  a.send(copyData('1\n'), copyData('2\n'), copyDone());
  await a.readies(1);
  assert.equal(a.trace, 'G C Z(I)');
  // Extended, as libpq does it: Sync right after Execute (ignored in copy-in), another after CopyDone.
  a.send(parse('', 'COPY t FROM STDIN'), bind('', ''), execute(), sync());
  while (a.received.filter((m) => m.type === 'G').length < 2) await new Promise((r) => setImmediate(r));
  assert.notEqual(a.session.current(), null);
  a.send(copyData('3\n'), copyDone(), sync());
  await a.readies(2);
  assert.equal(a.trace, 'G C Z(I) 1 2 G C Z(I)');
  a.send(query('COPY t TO STDOUT'), parse('out', 'COPY t TO STDOUT'), bind('', 'out'), execute(), sync());
  await a.readies(4);
  assert.equal(a.trace, 'G C Z(I) 1 2 G C Z(I) H d d c C Z(I) 1 2 H d d c C Z(I)');
  assert.equal(a.session.current(), null);
  assert.deepEqual(pool.returns, ['1:idle', '1:idle', '1:idle']);
});

test('client gone mid-transaction: the connection is given back broken', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  a.socket.destroy();
  while (a.endStats === null) await new Promise((r) => setImmediate(r));
  assert.deepEqual(pool.returns, ['1:broken']);
});

test('Terminate when idle ends quietly; the connection was already back', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('SELECT 1'));
  await a.readies(1);
  a.send(terminate());
  await a.end();
  assert.deepEqual(pool.returns, ['1:idle']);
  assert.ok(!pool.backends[0]!.log.includes('X'), 'the server never sees the Terminate');
  assert.equal(a.errors().length, 0);
});

test('the server closes while lent: 08006 FATAL to the client, the connection broken', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  pool.backends[0]!.socket.destroy();
  await a.end();
  assert.equal(a.trace, 'C Z(T) E(08006)');
  assert.equal(a.errors()[0]!.S, 'FATAL');
  assert.deepEqual(pool.returns, ['1:broken']);
});

test('no server connection in time: the PoolWaitError as a FATAL error', async () => {
  const pool = new FakePool(1);
  pool.failWith = new PoolWaitError('53300', 'no server connection available in time');
  const a = new Client(pool);
  a.send(query('SELECT 1'));
  await a.end();
  assert.equal(a.trace, 'E(53300)');
  assert.deepEqual(a.errors()[0], { S: 'FATAL', V: 'FATAL', C: '53300', M: 'no server connection available in time' });
});

test('LISTEN: 0A000 from a Query (aborting as PostgreSQL would) and from a Parse', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('  /* x */ listen chan'));
  await a.readies(1);
  a.send(parse('', 'LISTEN chan'), bind('', ''), execute(), sync());
  await a.readies(2);
  assert.equal(a.trace, 'E(0A000) Z(I) E(0A000) Z(I)');
  assert.deepEqual(
    a.errors().map((e) => e.M),
    [LISTEN_MESSAGE, LISTEN_MESSAGE],
  );
  a.send(query('SELECT listener'));
  await a.readies(3);
  assert.equal(a.errors().length, 2);
});

test('the per-connection statement cap evicts the least recently used with a Close on the server', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool, { perServer: 2, perClient: 100 });
  a.send(parse('a', 'SELECT a'), parse('b', 'SELECT b'), bind('', 'a'), execute(), parse('c', 'SELECT c'), sync());
  await a.readies(1);
  assert.equal(a.trace, '1 1 2 D C 1 Z(I)');
  const conn = pool.conns[0]!;
  assert.equal(conn.prepared.size, 2);
  const log = pool.backends[0]!.log;
  const closed = log.find((l) => l.startsWith('C:S:'));
  assert.ok(closed, log.join(' '));
  // 'b' was the least recently used ('a' was bound after it): binding it again re-prepares it.
  a.send(bind('', 'b'), execute(), sync());
  await a.readies(2);
  assert.equal(a.trace, '1 1 2 D C 1 Z(I) 2 D C Z(I)');
  assert.equal(pool.backends[0]!.statements.size, 2);
});

test('clients beyond the pool wait and get a connection in turn; every client sees its own answers', async () => {
  const pool = new FakePool(2);
  const clients = Array.from({ length: 10 }, () => new Client(pool));
  for (const [i, c] of clients.entries()) c.send(parse('s', `SELECT ${i}`), bind('', 's'), execute(), sync(), query(`SELECT q${i}`));
  await Promise.all(clients.map((c) => c.readies(2)));
  clients.forEach((c, i) => {
    assert.equal(c.trace, '1 2 D C Z(I) T D C Z(I)');
    const rows = c.received.filter((m) => m.type === 'D').map((m) => m.body.toString('latin1', 6));
    assert.deepEqual(rows, [String(i), `q${i}`]);
  });
  assert.equal(pool.idle.length, 2);
});

test('one byte per chunk both ways: the same answers, the same rewriting', async () => {
  const pool = new FakePool(1);
  pool.backends[0]!.dribble = true;
  const other = new Client(pool);
  other.send(parse('o', 'SELECT 4'), sync());
  await other.readies(1);
  const a = new Client(pool);
  a.dribble = true;
  a.send(
    query('BEGIN'),
    parse('s', 'SELECT 4'),
    bind('', 's'),
    describe('S', 's'),
    execute(),
    sync(),
    parse('s', 'SELECT 5'),
    bind('', 's'),
    sync(),
    close('S', 's'),
    parse('t', 'SELECT 6'),
    bind('', 't'),
    execute(),
    sync(),
    query('COMMIT'),
  );
  await a.readies(5);
  assert.equal(a.trace, 'C Z(T) 1 2 t T D C Z(T) E(42P05) Z(T) 3 1 2 D C Z(T) C Z(I)');
  assert.deepEqual(
    pool.backends[0]!.log.map((l) => l.split(':')[0]),
    ['P', 'S', 'Q', 'B', 'D', 'E', 'S', 'S', 'P', 'B', 'E', 'S', 'Q'],
  );
  assert.deepEqual(pool.returns, ['1:idle', '1:idle']);
  // The observer saw the client-facing stream: the client's names, the gateway's answers.
  assert.deepEqual(
    a.frontend.filter((e) => e.type === 'parse').map((e) => (e as { name: string }).name),
    ['s', 's', 't'],
  );
  assert.deepEqual(
    a.backend.filter((e) => e.type === 'parseComplete' || e.type === 'error').map((e) => e.type),
    ['parseComplete', 'error', 'parseComplete'],
  );
});

test('strict audit durability: server bytes wait for the hold before the client gets them', async () => {
  const pool = new FakePool(1);
  let release: (() => void) | null = null;
  let holds = 0;
  // The first chunk waits for the test; the rest find the log durable already.
  const hold = () => {
    holds++;
    if (release !== null) return null;
    return new Promise<void>((r) => {
      release = r;
    });
  };
  const a = new Client(pool, undefined, hold);
  a.send(query('SELECT 1'));
  while (release === null) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(a.received.length, 0);
  (release as () => void)();
  await a.readies(1);
  assert.equal(a.trace, 'T D C Z(I)');
  assert.ok(holds >= 1);
});

test('messages larger than a chunk, read whole across chunks: the same answers', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.chunkSize = 1000;
  const long = `SELECT ${'x'.repeat(40_000)}`;
  a.send(parse('big', long), bind('', 'big'), execute(), sync(), query(long));
  await a.readies(2);
  assert.equal(a.trace, '1 2 D C Z(I) T D C Z(I)');
  const rows = a.received.filter((m) => m.type === 'D').map((m) => m.body.length);
  assert.deepEqual(rows, [6 + 40_000, 6 + 40_000]);
  assert.match(pool.backends[0]!.log[0]!, /^P:pgw_[0-9a-f]{32}:SELECT x{40000}$/);
});

test('names the client never prepared go to the server as they are: its own error, its own name', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(bind('', 'nope'), execute(), sync(), close('S', 'nope'), sync());
  await a.readies(2);
  assert.equal(a.trace, 'E(26000) Z(I) 3 Z(I)');
  assert.equal(a.errors()[0]!.M, 'prepared statement "nope" does not exist');
});

test('terminate() from the gateway: FATAL with the given SQLSTATE at a boundary, the lent connection broken', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('BEGIN'));
  await a.readies(1);
  a.session.terminate({ sqlstate: '57P01', message: 'terminated by the security policy' });
  await a.end();
  assert.equal(a.trace, 'C Z(T) E(57P01)');
  assert.equal(a.errors()[0]!.S, 'FATAL');
  assert.deepEqual(pool.returns, ['1:broken']);
  assert.equal(a.session.current(), null);
});

test('ParameterStatus reaches the client and is kept on the connection', async () => {
  const pool = new FakePool(1);
  const a = new Client(pool);
  a.send(query('SET LOCAL application_name = app1'));
  await a.readies(1);
  assert.equal(a.trace, 'S C Z(I)');
  assert.equal(pool.conns[0]!.parameters.get('application_name'), 'app1');
});
