// The change feed after its connection is lost: it says so once, connects again through its
// connector (after a failover, to another host), tells subscribers to re-read everything, and
// reports the host it is on now. No PostgreSQL: the connector hands out fake clients.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type pg from 'pg';
import { ChangeFeed, CHANGE_CHANNEL, type CatalogChange } from '../../../src/catalog/change-feed.js';

class FakeClient extends EventEmitter {
  readonly queries: string[] = [];
  ended = false;
  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    super();
  }
  async query(text: string): Promise<void> {
    this.queries.push(text);
  }
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
  }
}

it('reconnects to the next host after the connection is lost, and asks for a full re-read', async () => {
  const hosts = [
    { host: '127.0.0.1', port: 5001 },
    { host: '127.0.0.1', port: 5002 },
  ];
  const made: FakeClient[] = [];
  let failNext = 0;
  const feed = new ChangeFeed(async (prepare) => {
    if (failNext > 0) {
      failNext--;
      throw new Error('no catalog host accepted a read-write session');
    }
    const h = hosts[Math.min(made.length, 1)]!;
    const c = new FakeClient(h.host, h.port);
    made.push(c);
    prepare(c as unknown as pg.Client);
    return c as unknown as pg.Client;
  });
  const changes: CatalogChange[] = [];
  feed.on('change', (c) => changes.push(c));
  // The feed's retry timers do not hold the process open (unref): this test does, while it waits.
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    await feed.start();
    assert.deepEqual([feed.connected, feed.server], [true, { host: '127.0.0.1', port: 5001 }]);
    assert.deepEqual(made[0]!.queries, [`listen ${CHANGE_CHANNEL}`]);
    assert.deepEqual(changes, [{ table: '*', op: 'RESYNC' }]);
    made[0]!.emit('notification', { channel: CHANGE_CHANNEL, payload: JSON.stringify({ table: 'firewall_rules', op: 'DELETE' }) });
    assert.deepEqual(changes.at(-1), { table: 'firewall_rules', op: 'DELETE' });

    // The primary goes away; the first attempts find no host that takes the session.
    failNext = 2;
    const disconnected: (Error | null)[] = [];
    feed.on('disconnected', (err) => disconnected.push(err));
    const back = once(feed, 'connected');
    made[0]!.emit('error', new Error('terminating connection due to administrator command'));
    made[0]!.emit('end');
    assert.equal(feed.connected, false);
    assert.equal(disconnected.length, 1, 'said once');
    assert.match(String(disconnected[0]?.message), /administrator command/);
    await back;
    assert.deepEqual([feed.connected, feed.server], [true, { host: '127.0.0.1', port: 5002 }]);
    assert.equal(disconnected.length, 1, 'failed attempts are not new disconnections');
    assert.deepEqual(changes.at(-1), { table: '*', op: 'RESYNC' });
    // A late notification on the lost connection is not delivered.
    const before = changes.length;
    made[0]!.emit('notification', { channel: CHANGE_CHANNEL, payload: JSON.stringify({ table: 'servers', op: 'UPDATE' }) });
    assert.equal(changes.length, before);
  } finally {
    clearInterval(keepAlive);
    await feed.stop();
  }
});

it('start() fails with the reason when no host can be reached, and tries no more after stop()', async () => {
  let calls = 0;
  const feed = new ChangeFeed(async () => {
    calls++;
    throw new Error('no catalog host accepted a read-write session: 127.0.0.1:1: connect ECONNREFUSED');
  });
  await assert.rejects(() => feed.start(), /ECONNREFUSED/);
  await feed.stop();
  assert.equal(calls, 1);
  assert.equal(feed.connected, false);
});
