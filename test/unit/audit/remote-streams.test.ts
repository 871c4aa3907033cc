// Streams of gateways on other hosts, as search and verify see them (the HTTP side is an
// adapter of app/; here a reader over a local store stands in for it): search merges a remote
// stream with the local ones and names one whose gateway does not answer; verify checks a copy
// of a remote store under the key it is given, and reports a gateway that does not answer as
// unreachable, which makes the whole answer not ok.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { searchStreams, type AuditHit, type RemoteStream } from '../../../src/audit/search.js';
import { readRecords, publicKeyPem } from '../../../src/audit/store/index.js';
import { verifyStreams } from '../../../src/audit/verify-streams.js';
import { openStore, tempRoot } from './helpers.js';

async function store(name: string, times: number[]): Promise<{ name: string; dir: string; key: string }> {
  const { root } = tempRoot();
  const dir = path.join(root, name);
  let clock = 0;
  const s = await openStore(dir, path.join(root, 'key.pem'), { now: () => clock });
  for (const ms of times) {
    clock = Date.UTC(2026, 0, 1, 0, 0, 0, ms);
    await s.append({ type: 'auth.succeeded', server: 'srv', user: `${name}-${ms}` });
  }
  const key = publicKeyPem(s.publicKey);
  await s.close();
  return { name, dir, key };
}

/** A remote stream read from a local store dir, as a gateway's API would serve it. */
function remoteOf(s: { name: string; dir: string; key: string }, o: { down?: string } = {}): RemoteStream {
  return {
    name: s.name,
    remote: {
      url: 'https://gw.example:8443',
      publicKeyPem: s.key,
      async *records(_q, afterSeq): AsyncGenerator<AuditHit> {
        if (o.down) throw new Error(o.down);
        for await (const r of readRecords(s.dir, { fromSeq: afterSeq + 1 }))
          yield { seq: r.seq, time: r.time, hash: r.hash, event: r.event as Record<string, unknown> };
      },
      async withStoreCopy(use) {
        if (o.down) throw new Error(o.down);
        const { root } = tempRoot();
        const copy = path.join(root, 'copy');
        cpSync(s.dir, copy, { recursive: true });
        return use(copy);
      },
    },
  };
}

test('search: a remote stream merges by time with the local one; one that does not answer is named missing', async () => {
  const local = await store('platform', [10, 30, 50]);
  const far = await store('gw-abc-6544', [20, 40]);
  const all = await searchStreams([local, remoteOf(far)], { type: 'auth.succeeded' });
  assert.deepEqual(
    all.hits.map((h) => `${h.gateway}:${h.event.user}`),
    ['platform:platform-10', 'gw-abc-6544:gw-abc-6544-20', 'platform:platform-30', 'gw-abc-6544:gw-abc-6544-40', 'platform:platform-50'],
  );
  assert.deepEqual(all.missing, []);
  // Paging through a remote stream resumes after its last seq.
  const first = await searchStreams([local, remoteOf(far)], { type: 'auth.succeeded', limit: 2 });
  const rest = await searchStreams([local, remoteOf(far)], { type: 'auth.succeeded', after: first.next! });
  assert.deepEqual(
    [...first.hits, ...rest.hits].map((h) => h.event.user),
    all.hits.map((h) => h.event.user),
  );

  const down = await searchStreams([local, remoteOf(far, { down: 'connect ECONNREFUSED 10.0.0.9:8443' })], { type: 'auth.succeeded' });
  assert.deepEqual(
    down.hits.map((h) => h.gateway),
    ['platform', 'platform', 'platform'],
  );
  assert.deepEqual(down.missing, [{ stream: 'gw-abc-6544', reason: 'connect ECONNREFUSED 10.0.0.9:8443' }]);
});

test('verify: a remote copy is checked under the registered key; a wrong key fails; no answer is unreachable and not ok', async () => {
  const local = await store('platform', [10]);
  const far = await store('gw-abc-6544', [20, 40]);
  const localStream = { ...local, publicKeyPem: () => local.key };
  const good = await verifyStreams([localStream, remoteOf(far)]);
  assert.ok(!('unknown' in good));
  assert.equal(good.ok, true);
  assert.deepEqual(
    good.streams.map((s) => [s.stream, s.ok, s.records, s.remote]),
    [
      ['platform', true, 1, undefined],
      ['gw-abc-6544', true, 2, 'https://gw.example:8443'],
    ],
  );

  const wrongKey = await verifyStreams([localStream, remoteOf({ ...far, key: local.key })]);
  assert.ok(!('unknown' in wrongKey));
  assert.equal(wrongKey.ok, false);
  assert.equal(wrongKey.streams[1]!.failure?.reason, 'checkpoint-signature');

  const down = await verifyStreams([localStream, remoteOf(far, { down: 'no answer in 10 s' })]);
  assert.ok(!('unknown' in down));
  assert.equal(down.ok, false);
  assert.deepEqual(
    down.streams.map((s) => [s.stream, s.ok, s.unreachable]),
    [
      ['platform', true, undefined],
      ['gw-abc-6544', false, 'no answer in 10 s'],
    ],
  );
});
