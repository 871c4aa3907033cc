// Searching several gateways' audit streams: merged by time, each hit naming its stream, and
// paging with a cursor that names each stream's place.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { formatCursor, parseCursor, searchStreams, type StreamCursor } from '../../../src/audit/search.js';
import { tempRoot, openStore } from './helpers.js';

function ev(ms: number, user: string): Record<string, unknown> {
  return { type: 'auth.succeeded', time: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString(), server: 'srv', user };
}

async function stream(name: string, times: number[]): Promise<{ name: string; dir: string }> {
  const { root } = tempRoot();
  const dir = path.join(root, name);
  // The store stamps each record with its clock: a clock that says each event's time.
  let clock = 0;
  const store = await openStore(dir, path.join(root, 'key.pem'), { now: () => clock });
  for (const ms of times) {
    clock = Date.UTC(2026, 0, 1, 0, 0, 0, ms);
    await store.append(ev(ms, `${name}-${ms}`));
  }
  await store.close();
  return { name, dir };
}

test('records of two streams come merged by time, each naming its stream; pages follow on', async () => {
  const a = await stream('platform', [10, 30, 50, 70]);
  const b = await stream('gw-1', [20, 40, 60]);
  const all = await searchStreams([a, b], { type: 'auth.succeeded' });
  assert.equal(all.next, null);
  assert.deepEqual(
    all.hits.map((h) => h.event.user),
    ['platform-10', 'gw-1-20', 'platform-30', 'gw-1-40', 'platform-50', 'gw-1-60', 'platform-70'],
  );
  assert.deepEqual(
    all.hits.map((h) => h.gateway),
    ['platform', 'gw-1', 'platform', 'gw-1', 'platform', 'gw-1', 'platform'],
  );
  const paged: string[] = [];
  let after: StreamCursor | null = {};
  while (after) {
    const page: Awaited<ReturnType<typeof searchStreams>> = await searchStreams([a, b], { type: 'auth.succeeded', limit: 3, after });
    paged.push(...page.hits.map((h) => String(h.event.user)));
    after = page.next && parseCursor(formatCursor(page.next), 'platform');
  }
  assert.deepEqual(
    paged,
    all.hits.map((h) => String(h.event.user)),
  );
});

test('cursors: a bare seq is the first stream; anything else malformed is refused', () => {
  assert.deepEqual(parseCursor('12', 'platform'), { platform: 12 });
  assert.deepEqual(parseCursor('platform:3,gw-6544:9', 'platform'), { platform: 3, 'gw-6544': 9 });
  assert.deepEqual(parseCursor(undefined, 'platform'), {});
  assert.equal(parseCursor('platform:x', 'platform'), null);
  assert.equal(parseCursor(':3', 'platform'), null);
  assert.equal(formatCursor({ platform: 3, 'gw-1': 4 }), 'platform:3,gw-1:4');
});
