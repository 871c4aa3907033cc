// A re-read that fails while the change feed is up (the pool met the old primary during a
// failover) is tried again by itself: the feed's RESYNC was its only notice. While the feed is
// down nothing is retried (its reconnection asks for the re-read). No PostgreSQL: a fake pool.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { ChangeFeed } from '../../../src/catalog/change-feed.js';
import { SnapshotStore } from '../../../src/catalog/snapshot.js';

function fakePool(failures: { left: number }): { db: pg.Pool; calls: () => number } {
  let calls = 0;
  const db = {
    async query(text: string) {
      calls++;
      if (failures.left > 0) {
        failures.left--;
        throw new Error('terminating connection due to administrator command');
      }
      // An empty catalog: the network state is one row of empty lists, every other list empty.
      if (text.includes('as subnets')) return { rows: [{ servers: [], firewall: [], vnet_rules: [], endpoints: [], vnets: [], subnets: [] }], rowCount: 1 };
      return { rows: [], rowCount: 0 };
    },
  };
  return { db: db as unknown as pg.Pool, calls: () => calls };
}

it('a failed re-read is retried while the feed is up, until it succeeds', async () => {
  const failures = { left: 1 };
  const { db } = fakePool(failures);
  const feed = Object.assign(new EventEmitter(), { connected: true }) as unknown as ChangeFeed;
  const store = new SnapshotStore(db, feed);
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    const updated = new Promise((r) => store.once('updated', r));
    await store.requestReload();
    assert.match(String(store.lastError?.message), /administrator command/);
    assert.equal(store.stale, true);
    const snapshot = (await updated) as { version: number };
    assert.equal(snapshot.version, 1);
    assert.equal(store.lastError, null);
    assert.equal(store.stale, false);
  } finally {
    clearInterval(keepAlive);
    store.close();
  }
});

it('while the feed is down a failed re-read waits for the feed', async () => {
  const failures = { left: 1 };
  const { db, calls } = fakePool(failures);
  const feed = Object.assign(new EventEmitter(), { connected: false }) as unknown as ChangeFeed;
  const store = new SnapshotStore(db, feed);
  try {
    await store.requestReload();
    const after = calls();
    assert.ok(store.lastError);
    // The feed's reconnection tells the store to re-read (RESYNC).
    (feed as unknown as { connected: boolean }).connected = true;
    const updated = new Promise((r) => store.once('updated', r));
    (feed as unknown as EventEmitter).emit('change', { table: '*', op: 'RESYNC' });
    await updated;
    assert.ok(calls() > after);
    assert.equal(store.lastError, null);
  } finally {
    store.close();
  }
});
