// The transaction-mode relay against a real PostgreSQL 15 (skipped when its binaries are not
// installed), with postgres.js as the client: it uses named prepared statements for every query,
// so 100 clients sharing 5 server connections only work if the relay carries each client's
// statements to whichever connection it is lent. The pool here is a small FIFO stand-in for
// gateway/pool/pool.ts (trust logins on a private Unix socket), and the front is a bare
// loopback listener that greets each client as PostgreSQL would, with no authentication: what
// is tested is the relay. The end-to-end test through the gateway is the lead's.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import pg from 'pg';
import { backendKeyData, parameterStatus, readyForQuery, SessionObserver, startupMessage, authenticationOk } from '../../src/pgwire/index.js';
import { startTransactionSession } from '../../src/gateway/pool/transaction-relay.js';
import type { Lender, ReturnState, ServerConnection } from '../../src/gateway/pool/types.js';

const BIN = '/usr/lib/postgresql/15/bin';
const available = existsSync(`${BIN}/postgres`) && existsSync(`${BIN}/initdb`);
const asRoot = userInfo().uid === 0;

function command(bin: string, args: string[]): [string, string[]] {
  return asRoot ? ['runuser', ['-u', 'nobody', '--', `${BIN}/${bin}`, ...args]] : [`${BIN}/${bin}`, args];
}

/** A server connection logged in with trust: the bytes up to its first ReadyForQuery are read here. */
async function openServer(socketPath: string, id: number): Promise<ServerConnection> {
  const socket = net.createConnection({ path: socketPath });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(startupMessage({ user: 'postgres', database: 'postgres' }));
  const parameters = new Map<string, string>();
  let processId = 0;
  let secretKey = Buffer.alloc(4);
  let buf = Buffer.alloc(0);
  const rest = await new Promise<Buffer>((resolve, reject) => {
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + buf.readInt32BE(1));
        buf = buf.subarray(1 + buf.readInt32BE(1));
        if (type === 'E') reject(new Error(body.toString()));
        if (type === 'S') {
          const [k, v] = body.toString().split('\0');
          parameters.set(k!, v!);
        }
        if (type === 'K') {
          processId = body.readInt32BE(0);
          secretKey = Buffer.from(body.subarray(4));
        }
        if (type === 'Z') {
          socket.off('data', onData);
          socket.pause();
          resolve(Buffer.from(buf));
          return;
        }
      }
    };
    socket.on('data', onData);
  });
  return { id, socket, processId, secretKey, parameters, prepared: new Set(), rest };
}

/** FIFO stand-in for the pool: at most `size` connections, opened on demand. */
class TestPool implements Lender {
  private readonly idle: ServerConnection[] = [];
  private readonly waiting: ((c: ServerConnection) => void)[] = [];
  private opened = 0;
  readonly all: ServerConnection[] = [];
  broken = 0;
  lends = 0;

  constructor(
    private readonly socketPath: string,
    private readonly size: number,
  ) {}

  async acquire(): Promise<ServerConnection> {
    this.lends++;
    const c = this.idle.shift();
    if (c) return c;
    if (this.opened < this.size) {
      this.opened++;
      const conn = await openServer(this.socketPath, this.opened);
      this.all.push(conn);
      return conn;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(conn: ServerConnection, state: ReturnState): void {
    if (state === 'broken') {
      this.broken++;
      this.opened--;
      conn.socket.destroy();
      return;
    }
    const next = this.waiting.shift();
    if (next) next(conn);
    else this.idle.push(conn);
  }

  close(): void {
    for (const c of this.all) c.socket.destroy();
  }
}

/** A loopback front that greets each client as PostgreSQL would (no authentication) and relays it in transaction mode. */
function front(pool: Lender): Promise<net.Server> {
  const server = net.createServer((client) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < 8) return;
      const len = buf.readInt32BE(0);
      if (buf.length < len) return;
      if (buf.readInt32BE(4) === 80877103) {
        client.write('N'); // SSLRequest
        buf = buf.subarray(len);
        return;
      }
      client.off('data', onData);
      client.pause();
      const rest = Buffer.from(buf.subarray(len));
      client.write(
        Buffer.concat([
          authenticationOk(),
          parameterStatus('server_version', '15.0'),
          parameterStatus('client_encoding', 'UTF8'),
          parameterStatus('standard_conforming_strings', 'on'),
          parameterStatus('DateStyle', 'ISO, MDY'),
          parameterStatus('integer_datetimes', 'on'),
          backendKeyData(1, Buffer.alloc(4)),
          readyForQuery('I'),
        ]),
      );
      startTransactionSession({ client, clientRest: rest, lender: pool, observer: new SessionObserver([]), onEnd: () => {} });
      client.resume();
    };
    client.on('data', onData);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function msg(type: string, ...parts: (string | Buffer | number[])[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(`${p}\0`) : Buffer.isBuffer(p) ? p : Buffer.from(p))));
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}

/** A client that speaks the protocol by hand: sends bytes, reads messages up to the n-th ReadyForQuery. */
class RawClient {
  private buf = Buffer.alloc(0);
  private readonly seen: { type: string; body: Buffer }[] = [];
  private wake: (() => void) | null = null;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 5 && this.buf.length >= 1 + this.buf.readInt32BE(1)) {
        const len = this.buf.readInt32BE(1);
        this.seen.push({ type: String.fromCharCode(this.buf[0]!), body: Buffer.from(this.buf.subarray(5, 1 + len)) });
        this.buf = this.buf.subarray(1 + len);
      }
      this.wake?.();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket);
    socket.write(startupMessage({ user: 'postgres', database: 'postgres' }));
    await c.until((m) => m.type === 'Z');
    c.seen.length = 0;
    return c;
  }

  async until(done: (m: { type: string; body: Buffer }) => boolean): Promise<void> {
    while (!this.seen.some(done)) await new Promise<void>((r) => (this.wake = r));
  }

  /** Sends, then waits for `readies` ReadyForQuery; returns the trace since the last call. */
  async exchange(bytes: Buffer[], readies: number): Promise<string> {
    this.socket.write(Buffer.concat(bytes));
    while (this.seen.filter((m) => m.type === 'Z').length < readies) await new Promise<void>((r) => (this.wake = r));
    const trace = this.seen
      .map((m) => {
        if (m.type === 'Z') return `Z(${m.body.toString('latin1')})`;
        if (m.type !== 'E') return m.type;
        const code = m.body.indexOf('C') >= 0 ? /C([0-9A-Z]{5})/.exec(m.body.toString('latin1'))?.[1] : '';
        return `E(${code})`;
      })
      .join(' ');
    this.seen.length = 0;
    return trace;
  }
}

const int16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const rawParse = (name: string, text: string) => msg('P', name, text, int16(0));
const rawBind = (stmt: string) => msg('B', '', stmt, int16(0), int16(0), int16(0));
const rawExecute = () => msg('E', '', [0, 0, 0, 0]);
const rawSync = () => msg('S');

describe('transaction-mode relay with postgres.js and PostgreSQL 15', { skip: !available && 'PostgreSQL 15 binaries not installed' }, () => {
  let dir = '';
  let socketPath = '';
  let postmaster: ChildProcess | null = null;
  let pool: TestPool;
  let listener: net.Server;
  let port = 0;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-pool-tx-'));
    if (asRoot) chownSync(dir, 65534, 65534);
    const data = path.join(dir, 'data');
    const [initdb, initArgs] = command('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--locale=C',
      '--auth-local=trust',
      '--auth-host=reject',
      '--no-sync',
    ]);
    execFileSync(initdb, initArgs, { stdio: 'ignore' });
    const [bin, args] = command('postgres', ['-D', data, '-c', 'listen_addresses=', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off']);
    postmaster = spawn(bin, args, { stdio: 'ignore' });
    socketPath = path.join(dir, '.s.PGSQL.5432');
    for (let i = 0; ; i++) {
      const admin = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
      try {
        await admin.connect();
        await admin.query('create table t (v int)');
        await admin.end();
        break;
      } catch (err) {
        await admin.end().catch(() => undefined);
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    pool = new TestPool(socketPath, 5);
    listener = await front(pool);
    port = (listener.address() as net.AddressInfo).port;
  });

  after(async () => {
    listener?.close();
    pool?.close();
    const pidFile = path.join(dir, 'data', 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGINT');
    }
    if (postmaster && postmaster.exitCode === null) await new Promise((resolve) => postmaster!.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const client = () => postgres({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', max: 1, ssl: false, onnotice: () => {} });

  it('100 clients, 5 server connections, named prepared statements and transactions', async () => {
    const clients = Array.from({ length: 100 }, client);
    const pids = new Set<number>();
    try {
      await Promise.all(
        clients.map(async (sql, i) => {
          for (let k = 0; k < 3; k++) {
            const rows = await sql<{ v: number; pid: number }[]>`select ${i * 10 + k}::int as v, pg_backend_pid() as pid`;
            assert.equal(rows[0]!.v, i * 10 + k);
            pids.add(rows[0]!.pid);
          }
          // A transaction keeps its connection from BEGIN to COMMIT.
          const inTx = await sql.begin(async (tx) => {
            const a = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
            await tx`insert into t values (${i})`;
            const b = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
            return [a[0]!.pid, b[0]!.pid];
          });
          assert.equal(inTx[0], inTx[1]);
          // Another statement name of this client, the same text as other clients'.
          const n = await sql<{ n: number }[]>`select count(*)::int as n from t where v = ${i}`;
          assert.equal(n[0]!.n, 1);
        }),
      );
    } finally {
      await Promise.all(clients.map((sql) => sql.end()));
    }
    assert.ok(pids.size <= 5, `backends used: ${pids.size}`);
    assert.equal(pool.broken, 0);
    // The server connections hold the gateway's statements, not the clients' names.
    const check = client();
    try {
      const names = await check<{ name: string }[]>`select name from pg_prepared_statements`;
      assert.ok(names.length > 0);
      for (const { name } of names) assert.match(name, /^pgw_[0-9a-f]{32}$/);
    } finally {
      await check.end();
    }
  });

  it('an error in a transaction, then ROLLBACK; LISTEN refused', async () => {
    const sql = client();
    try {
      await assert.rejects(
        sql.begin(async (tx) => {
          await tx`select 1/0`;
        }),
        (err: { code?: string }) => err.code === '22012',
      );
      assert.deepEqual([...(await sql`select 2 as x`)], [{ x: 2 }]);
      await assert.rejects(sql.unsafe('LISTEN chan'), (err: { code?: string; message?: string }) => {
        assert.equal(err.code, '0A000');
        assert.equal(err.message, 'LISTEN is not supported on a server in transaction pooling mode');
        return true;
      });
      assert.deepEqual([...(await sql`select 3 as x`)], [{ x: 3 }]);
    } finally {
      await sql.end();
    }
  });

  it('node-postgres: named statements, several statements in one simple query', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      const r1 = await c.query({ name: 'q1', text: 'select $1::int + 1 as v', values: [1] });
      const r2 = await c.query({ name: 'q1', text: 'select $1::int + 1 as v', values: [41] });
      assert.deepEqual([r1.rows[0].v, r2.rows[0].v], [2, 42]);
      const multi = await c.query('select 1 as a; select 2 as b');
      assert.equal((multi as unknown as pg.QueryResult[]).length, 2);
    } finally {
      await c.end();
    }
  });
  it('by hand: a duplicate name gets 42P05 until Sync, Close then re-Parse, COPY in and out, LISTEN inside a transaction', async () => {
    const c = await RawClient.connect(port);
    try {
      assert.equal(await c.exchange([rawParse('s', 'select 1'), rawSync()], 1), '1 Z(I)');
      assert.equal(await c.exchange([rawParse('s', 'select 2'), rawBind('s'), rawExecute(), rawSync()], 1), 'E(42P05) Z(I)');
      assert.equal(await c.exchange([msg('C', Buffer.from('S'), 's'), rawParse('s', 'select 2'), rawBind('s'), rawExecute(), rawSync()], 1), '3 1 2 D C Z(I)');
      // COPY FROM STDIN with the data sent at once (before CopyInResponse), by simple query.
      const data = msg('d', Buffer.from('7000\n8000\n'));
      assert.equal(await c.exchange([msg('Q', 'copy t from stdin'), data, msg('c')], 1), 'G C Z(I)');
      // By extended query, as libpq does it: Sync after Execute (ignored in copy-in) and after CopyDone.
      assert.equal(await c.exchange([rawParse('', 'copy t from stdin'), rawBind(''), rawExecute(), rawSync(), data, msg('c'), rawSync()], 1), '1 2 G C Z(I)');
      assert.equal(await c.exchange([msg('Q', 'copy (select v from t where v in (7000, 8000) order by v) to stdout')], 1), 'H d d d d c C Z(I)');
      // LISTEN in a transaction aborts it, as PostgreSQL's own error would.
      assert.equal(
        await c.exchange([msg('Q', 'begin'), msg('Q', 'listen chan'), msg('Q', 'select 1'), msg('Q', 'rollback')], 4),
        'C Z(T) E(0A000) Z(E) E(25P02) Z(E) C Z(I)',
      );
    } finally {
      c.socket.end(msg('X'));
    }
  });
});
