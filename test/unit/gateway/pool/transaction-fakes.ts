// Fakes for the transaction-mode relay's tests (transaction-*.test.ts), over in-memory streams:
// a server that speaks enough of the protocol (statements, portals, errors skipping to Sync,
// transaction status, COPY) behind a pool, and clients that see what a PostgreSQL client would
// (and what the session's observer saw).
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { duplexPair } from '../handshake/duplex-pair.js';
import { SessionObserver, type BackendEvent, type FrontendEvent, type SessionConsumer } from '../../../../src/pgwire/index.js';
import {
  LISTEN_MESSAGE,
  startTransactionSession,
  startTransactionSessionWith,
  type TransactionSession,
} from '../../../../src/gateway/pool/transaction-relay.js';
import type { PoolWaitError, Lender, ReturnState, ServerConnection } from '../../../../src/gateway/pool/types.js';

// ---- wire helpers

export function msg(type: string, ...parts: (string | Buffer | number[])[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(`${p}\0`) : Buffer.isBuffer(p) ? p : Buffer.from(p))));
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
export const int16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
export const parse = (name: string, text: string) => msg('P', name, text, int16(0));
export const bind = (portal: string, stmt: string) => msg('B', portal, stmt, int16(0), int16(0), int16(0));
export const describe = (kind: 'S' | 'P', name: string) => msg('D', Buffer.from(kind), name);
export const execute = (portal = '') => msg('E', portal, [0, 0, 0, 0]);
export const close = (kind: 'S' | 'P', name: string) => msg('C', Buffer.from(kind), name);
export const sync = () => msg('S');
export const flush = () => msg('H');
export const query = (text: string) => msg('Q', text);
export const copyData = (text: string) => msg('d', Buffer.from(text));
export const copyDone = () => msg('c');
export const terminate = () => msg('X');

export interface Message {
  type: string;
  body: Buffer;
}

/** Splits a stream's bytes into messages. */
export function split(buf: Buffer): { messages: Message[]; rest: Buffer } {
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

export function cstrings(body: Buffer): string[] {
  return body
    .toString('utf8')
    .split('\0')
    .filter((s, i, a) => i < a.length - 1 || s !== '');
}

export function errorFields(body: Buffer): Record<string, string> {
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

export class FakeBackend {
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

export function rowDescription(): Buffer {
  return msg('T', int16(1), 'v', [0, 0, 0, 0], int16(0), [0, 0, 0, 25], int16(-1), [0xff, 0xff, 0xff, 0xff], int16(0));
}

// ---- a fake pool

export class FakePool implements Lender {
  readonly conns: ServerConnection[] = [];
  readonly backends: FakeBackend[] = [];
  readonly idle: ServerConnection[] = [];
  readonly waiting: ((c: ServerConnection) => void)[] = [];
  readonly returns: string[] = [];
  failWith: PoolWaitError | null = null;
  /** Like the real pool, a warm connection is lent at once (tryAcquire) when nobody waits; false:
   * only through acquire()'s promise. */
  lendsAtOnce = true;

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

  tryAcquire(): ServerConnection | null {
    if (!this.lendsAtOnce || this.failWith || this.waiting.length > 0) return null;
    return this.idle.shift() ?? null;
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

export class Client {
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
    /** More consumers of the session's observer (the audit, the SQL watch). */
    consumers: readonly SessionConsumer[] = [],
  ) {
    const [clientSide, gatewaySide] = duplexPair();
    this.socket = clientSide;
    const observer = new SessionObserver([{ frontend: (e) => this.frontend.push(e), backend: (e) => this.backend.push(e) }, ...consumers]);
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
