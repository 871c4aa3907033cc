// The pool adapter with a fake server (no sockets, no PostgreSQL): keys proved by clients, reset
// before reuse, a password change flushing warm connections, the wait timeout's error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import pino from 'pino';
import { ServerPools, POOL_WAIT_SQLSTATE, verifierId, type ProvedKeys } from '../../../../src/gateway/pool/pool.js';
import { PoolWaitError } from '../../../../src/gateway/pool/types.js';
import type { BackendSession } from '../../../../src/gateway/backend.js';
import type { CatalogSnapshot } from '../../../../src/catalog/snapshot.js';
import type { ServerRecord } from '../../../../src/catalog/servers-repo.js';
import type { VerifierLookup } from '../../../../src/gateway/verifier-cache.js';
import type { ScramVerifier } from '../../../../src/auth/scram/index.js';
import { parameterStatus, readyForQuery } from '../../../../src/pgwire/index.js';

/** Answers each Query as PostgreSQL does: DISCARD ALL resets application_name, SET
 * application_name sets it (CommandComplete, the ParameterStatus, ReadyForQuery 'I'). */
class FakeServer extends Duplex {
  queries = 0;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    if (chunk[0] === 0x51) {
      this.queries++;
      const text = chunk.toString('utf8', 5, chunk.length - 1);
      const set = /^SET application_name TO E'(.*)'$/.exec(text);
      const tag = Buffer.from(set ? 'SET\0' : 'DISCARD ALL\0');
      const cc = Buffer.alloc(5 + tag.length);
      cc[0] = 0x43;
      cc.writeInt32BE(4 + tag.length, 1);
      tag.copy(cc, 5);
      const app = set ? set[1]!.replace(/''/g, "'").replace(/\\\\/g, '\\') : '';
      this.push(Buffer.concat([cc, parameterStatus('application_name', app), readyForQuery('I')]));
    }
    cb();
  }
}

function setup(size = 2) {
  let now = 1_000;
  const record = { id: 1, name: 's1', poolMode: 'session', poolSize: size, state: 'Ready' } as unknown as ServerRecord;
  const snapshot = { servers: new Map([['s1', record]]) } as unknown as CatalogSnapshot;
  const opened: { pid: number; clientKey: string; socket: FakeServer }[] = [];
  let lookup: VerifierLookup = { kind: 'cannot-login' };
  let pid = 100;
  const pools = new ServerPools({
    snapshot: () => snapshot,
    socketDir: () => '/nowhere',
    refreshVerifier: async () => lookup,
    limits: { poolWaitTimeoutMs: 5_000, poolIdleTimeoutMs: 60_000, poolVerifierPollMs: 3_600_000 },
    log: pino({ level: 'silent' }),
    now: () => now,
    connect: async (o) => {
      const socket = new FakeServer();
      opened.push({ pid: ++pid, clientKey: o.clientKey.toString('hex'), socket });
      const b: BackendSession = {
        socket: socket as unknown as net.Socket,
        greeting: [parameterStatus('application_name', 'first'), parameterStatus('TimeZone', 'UTC')],
        readyForQuery: readyForQuery('I'),
        processId: pid,
        secretKey: Buffer.from([1, 2, 3, 4]),
        rest: Buffer.alloc(0),
      };
      return b;
    },
  });
  return {
    pools,
    record,
    opened,
    advance: (ms: number) => (now += ms),
    setLookup: (l: VerifierLookup) => (lookup = l),
  };
}

const verifier = (n: number): ScramVerifier => ({
  iterations: 4096,
  salt: Buffer.alloc(16, n),
  storedKey: Buffer.alloc(32, n),
  serverKey: Buffer.alloc(32, n),
});
const keys = (n: number): ProvedKeys => ({ clientKey: Buffer.alloc(32, n), serverKey: Buffer.alloc(32, n), verifier: verifierId(verifier(n)), poll: true });
const forward = new Map([
  ['user', 'bob'],
  ['database', 'postgres'],
]);
const settle = () => new Promise((r) => setImmediate(r));

test('a connection opened with the proved keys is reset and reused by the next client', async () => {
  const { pools, record, opened } = setup();
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const c1 = await a.acquire();
  assert.equal(opened[0]!.clientKey, Buffer.alloc(32, 1).toString('hex'));
  assert.equal(c1.parameters.get('application_name'), 'first');
  a.release(c1, 'idle');
  a.end();
  await settle();
  assert.equal(opened[0]!.socket.queries, 2, "DISCARD ALL sent, then the leaving client's application_name again, in one round trip");
  const b = pools.client(record, 'bob', 'postgres', forward);
  const c2 = await b.acquire();
  assert.equal(c2, c1);
  assert.equal(c2.parameters.get('application_name'), 'first', "the reset reported its parameters: the leaving client's name, set again");
  const [s] = pools.poolStats('s1');
  assert.deepEqual(
    { clients: s!.clients, active: s!.active, idle: s!.idle, opened: s!.opened, reused: s!.reused, mode: s!.mode, user: s!.user },
    { clients: 1, active: 1, idle: 0, opened: 1, reused: 1, mode: 'session', user: 'bob' },
  );
  pools.close();
});

test('a broken return is closed, not reused', async () => {
  const { pools, record, opened } = setup();
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const c1 = await a.acquire();
  a.release(c1, 'broken');
  assert.equal(opened[0]!.socket.destroyed, true);
  const c2 = await a.acquire();
  assert.notEqual(c2.processId, c1.processId);
  pools.close();
});

test('a client proving a different verifier closes idle connections and lent ones on return', async () => {
  const { pools, record, opened } = setup(3);
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const idle = await a.acquire();
  const lent = await a.acquire();
  a.release(idle, 'idle');
  await settle();
  assert.equal(pools.poolStats('s1')[0]!.idle, 1);
  pools.proved(1, 'bob', keys(2)); // the password changed
  assert.equal(opened[0]!.socket.destroyed, true, 'the idle connection is closed');
  a.release(lent, 'idle');
  await settle();
  assert.equal(opened[1]!.socket.destroyed, true, 'the lent one is closed when it comes back');
  const fresh = await a.acquire();
  assert.equal(opened[2]!.clientKey, Buffer.alloc(32, 2).toString('hex'), 'opened with the new keys');
  assert.equal(fresh.processId, opened[2]!.pid);
  pools.close();
});

test('polling: a changed verifier, or a role that can no longer log in, flushes the role', async () => {
  const { pools, record, opened, setLookup } = setup();
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  a.release(await a.acquire(), 'idle');
  await settle();
  setLookup({ kind: 'scram', verifier: verifier(1) });
  await pools.poll();
  assert.equal(opened[0]!.socket.destroyed, false, 'same verifier: kept');
  setLookup({ kind: 'scram', verifier: verifier(9) });
  await pools.poll();
  assert.equal(opened[0]!.socket.destroyed, true);
  // No keys until a client proves the new password: nothing can be opened.
  await assert.rejects(a.acquire(), (e: PoolWaitError) => e instanceof PoolWaitError && e.sqlstate === '57P01' && /password changed/.test(e.message));
  pools.close();
});

test('a client that waits past the wait timeout gets a retryable error; the next in line still gets a connection', async () => {
  const { pools, record, advance } = setup(1);
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const held = await a.acquire();
  const late = a.acquire();
  advance(3_000);
  const onTime = a.acquire();
  advance(2_000);
  pools.sweep();
  await assert.rejects(late, (e: PoolWaitError) => {
    assert.equal(e.sqlstate, POOL_WAIT_SQLSTATE);
    assert.equal(e.message, 'no server connection became free in 5 s (pool size 1 for role "bob"): try again later');
    return true;
  });
  a.release(held, 'idle');
  assert.equal(await onTime, held);
  const [s] = pools.poolStats('s1');
  assert.equal(s!.waits, 2);
  assert.equal(s!.waitMs, 5_000 + 2_000);
  pools.close();
});

test('pool mode turned off: waiting clients are refused, idle connections closed', async () => {
  const { pools, record, opened } = setup(1);
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const held = await a.acquire();
  const waiting = a.acquire();
  (record as { poolMode: string }).poolMode = 'none';
  pools.sweep();
  await assert.rejects(waiting, (e: PoolWaitError) => e.sqlstate === '57P01');
  a.release(held, 'idle');
  assert.equal(opened[0]!.socket.destroyed, true);
  assert.deepEqual(pools.poolStats('s1'), []);
  pools.close();
});

test('a client that leaves while it waits leaves the queue; the connection goes to the next one', async () => {
  const { pools, record } = setup(1);
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const held = await a.acquire();
  const socket = new EventEmitter();
  const leaving = a.acquire(socket);
  const next = a.acquire();
  assert.equal(pools.poolStats('s1')[0]!.waiting, 2);
  socket.emit('close');
  await assert.rejects(leaving, (e: PoolWaitError) => e.sqlstate === '08006');
  assert.equal(pools.poolStats('s1')[0]!.waiting, 1);
  a.release(held, 'idle');
  assert.equal(await next, held);
  assert.equal(socket.listenerCount('close'), 0);
  pools.close();
});

test('an idle connection the server closed a moment ago is not lent: a new one is opened', async () => {
  const { pools, record, opened } = setup(2);
  pools.proved(1, 'bob', keys(1));
  const a = pools.client(record, 'bob', 'postgres', forward);
  const c1 = await a.acquire();
  a.release(c1, 'idle');
  await settle();
  opened[0]!.socket.destroy(); // its close event has not been handled yet
  const c2 = await a.acquire();
  assert.notEqual(c2, c1);
  assert.equal(opened.length, 2);
  const [s] = pools.poolStats('s1');
  assert.equal(s!.active, 1);
  assert.equal(s!.idle, 0);
  pools.close();
});
