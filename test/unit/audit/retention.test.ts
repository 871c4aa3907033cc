import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readRecords } from '../../../src/audit/store/read-records.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { appendMany, checkpointFiles, openStore, segmentFiles, tempRoot } from './helpers.js';

const DAY = 24 * 3600 * 1000;
const T0 = Date.UTC(2025, 0, 1);

describe('audit store: retention', () => {
  it('deletes whole old segments; verify passes from the first remaining segment opening checkpoint', async () => {
    const { dir, keyFile } = tempRoot();
    let clock = T0;
    const store = await openStore(dir, keyFile, { now: () => clock, maxSegmentAgeMs: DAY, checkpointEvery: 30 });
    await appendMany(store, 0, 100); // segment 1, day 0
    const early = store.exportCheckpoint(await store.checkpoint()); // a witness copy from day 0
    clock = T0 + 2 * DAY;
    await appendMany(store, 100, 100); // segment 2, day 2 (segment 1 was a day old: rolled)
    clock = T0 + 4 * DAY;
    await appendMany(store, 200, 100); // segment 3, day 4
    const oldWitness = store.exportCheckpoint((await verifyStore(dir, { publicKey: store.publicKey })).lastCheckpoint);
    assert.deepEqual(segmentFiles(dir), ['segment-000001.log', 'segment-000002.log', 'segment-000003.log']);
    assert.equal((await verifyStore(dir, { publicKey: store.publicKey })).ok, true);

    assert.deepEqual((await store.applyRetention(new Date(T0 - DAY))).deleted, [], 'nothing is that old');
    const result = await store.applyRetention(new Date(T0 + 3 * DAY));
    assert.deepEqual(result.deleted, ['segment-000001.log', 'segment-000002.log', 'checkpoints-000001.log', 'checkpoints-000002.log']);
    assert.equal(result.firstSeq, 201);
    assert.equal(result.anchor?.size, 200);

    await appendMany(store, 300, 10);
    await store.close();
    const witness = store.exportCheckpoint();
    const report = await verifyStore(dir, { publicKey: store.publicKey, lastKnownCheckpoint: witness });
    assert.equal(report.ok, true, report.failure?.message);
    assert.equal(report.anchor?.size, 200);
    assert.equal(report.firstSeq, 201);
    assert.equal(report.lastSeq, 310);
    const seqs: number[] = [];
    for await (const r of readRecords(dir)) seqs.push(r.seq);
    assert.equal(seqs[0], 201);
    assert.equal(seqs.length, 110);

    // A witness older than what is kept cannot be compared; verify says so instead of failing.
    const stale = await verifyStore(dir, { publicKey: store.publicKey, lastKnownCheckpoint: early });
    assert.equal(stale.ok, true, stale.failure?.message);
    assert.match(stale.warnings.join(), /witness checkpoint \d+ \(size 100\) predates the verified range \(from seq 201\)/);
    const older = await verifyStore(dir, { publicKey: store.publicKey, lastKnownCheckpoint: oldWitness });
    assert.equal(older.ok, true, older.failure?.message);
    assert.deepEqual(older.warnings, []);

    // The store reopens and continues after retention.
    const again = await openStore(dir, keyFile, { now: () => clock });
    assert.equal((await again.append({ type: 'after-retention' })).seq, 311);
    await again.close();
    assert.equal((await verifyStore(dir, { publicKey: store.publicKey })).ok, true);
  });

  it('an interrupted retention (segment gone, its checkpoint file left) verifies, and the next run removes the orphan', async () => {
    const { dir, keyFile } = tempRoot();
    let clock = T0;
    const store = await openStore(dir, keyFile, { now: () => clock, maxSegmentAgeMs: DAY });
    await appendMany(store, 0, 20);
    clock += 2 * DAY;
    await appendMany(store, 20, 20);
    clock += 2 * DAY;
    await appendMany(store, 40, 20);
    rmSync(path.join(dir, 'segment-000001.log')); // the crash came before checkpoints-000001.log went
    const report = await verifyStore(dir, { publicKey: store.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
    assert.match(report.warnings.join(), /checkpoints-000001\.log belongs to a segment no longer present/);
    const result = await store.applyRetention(new Date(T0 + DAY));
    assert.deepEqual(result.deleted, ['checkpoints-000001.log']);
    assert.equal(existsSync(path.join(dir, 'checkpoints-000001.log')), false);
    assert.deepEqual(checkpointFiles(dir), ['checkpoints-000002.log', 'checkpoints-000003.log']);
    await store.close();
    assert.equal((await verifyStore(dir, { publicKey: store.publicKey })).ok, true);
  });

  it('never deletes the active segment, however old', async () => {
    const { dir, keyFile } = tempRoot();
    let clock = T0;
    const store = await openStore(dir, keyFile, { now: () => clock });
    await appendMany(store, 0, 10);
    clock += 400 * DAY;
    assert.deepEqual((await store.applyRetention(new Date(clock))).deleted, []);
    await store.close();
    assert.equal((await verifyStore(dir, { publicKey: store.publicKey })).records, 10);
  });
});
