import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Checkpoint } from '../../../src/audit/store/checkpoint.js';
import { AuditCorruptError, AuditKeyError, AuditLockError, AuditWriteError } from '../../../src/audit/store/errors.js';
import { readRecords } from '../../../src/audit/store/read-records.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { canonicalJson } from '../../../src/audit/store/canonical-json.js';
import { appendMany, checkpointFiles, editLine, event, fileLines, openStore, RecordingIo, recordRun, segmentFiles, sleep, tempRoot } from './helpers.js';

async function seqs(dir: string): Promise<number[]> {
  const out: number[] = [];
  for await (const r of readRecords(dir)) out.push(r.seq);
  return out;
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('audit store: append, reopen, continue', () => {
  it('numbers records 1.., chains them, and continues the chain after a reopen', async () => {
    const { dir, keyFile } = tempRoot();
    const s1 = await openStore(dir, keyFile, { durability: 'strict' });
    assert.equal(s1.recovery.fresh, true);
    const first = await s1.append(event(1));
    assert.deepEqual(first.seq, 1);
    await appendMany(s1, 2, 9);
    await s1.close();

    const s2 = await openStore(dir, keyFile, { durability: 'strict' });
    assert.equal(s2.recovery.fresh, false);
    assert.equal(s2.recovery.lastSeq, 10);
    assert.deepEqual(s2.recovery.truncated, []);
    const next = await s2.append(event(11));
    assert.equal(next.seq, 11);
    await appendMany(s2, 12, 4);
    await s2.close();

    assert.deepEqual(await seqs(dir), range(1, 15));
    const records = [];
    for await (const r of readRecords(dir, { fromSeq: 10 })) records.push(r);
    assert.deepEqual(
      records.map((r) => r.seq),
      [10, 11, 12, 13, 14, 15],
    );
    assert.equal(records[1]!.prev, records[0]!.hash);
    assert.deepEqual(records[1]!.event, JSON.parse(JSON.stringify(event(11))));
    const report = await verifyStore(dir, { publicKey: s2.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
    assert.equal(report.records, 15);
    // genesis, the checkpoint written by close, the reopen adds none (all covered), close again
    const cps = fileLines(dir, 'checkpoints-000001.log').map((l) => JSON.parse(l) as Checkpoint);
    assert.deepEqual(
      cps.map((c) => [c.index, c.size]),
      [
        [0, 0],
        [1, 10],
        [2, 15],
      ],
    );
  });

  it('creates the signing key 0600 and the store dir 0700; refuses a key readable by others or another key', async () => {
    const { dir, keyFile, root } = tempRoot();
    const s = await openStore(dir, keyFile);
    await s.append(event(1));
    await s.close();
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.match(readFileSync(keyFile, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    chmodSync(keyFile, 0o644);
    await assert.rejects(openStore(dir, keyFile), AuditKeyError);
    chmodSync(keyFile, 0o600);
    await assert.rejects(openStore(dir, path.join(root, 'other.pem')), (err: Error) => err instanceof AuditKeyError && /signed by key/.test(err.message));
  });

  it('allows one writer per directory', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile);
    await assert.rejects(openStore(dir, keyFile), AuditLockError);
    await s.close();
    (await openStore(dir, keyFile)).close();
  });

  it('rejects what is not a JSON object, too large, or beyond the queue bound', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { maxRecordBytes: 1000, maxPendingRecords: 5 });
    const reason = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: unknown) => (e instanceof AuditWriteError ? e.reason : String(e)),
      );
    assert.equal(await reason(s.append([1, 2])), 'invalid-event');
    assert.equal(await reason(s.append({ n: 10n })), 'invalid-event');
    assert.equal(await reason(s.append({ big: 'x'.repeat(2000) })), 'invalid-event');
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => reason(s.append(event(i)))));
    assert.deepEqual(results, ['ok', 'ok', 'ok', 'ok', 'ok', 'queue-full', 'queue-full', 'queue-full']);
    await s.close();
    assert.equal(await reason(s.append(event(9))), 'closed');
    assert.deepEqual(await seqs(dir), [1, 2, 3, 4, 5]);
  });

  it('takes events given as their canonical JSON in UTF-8 (the relay records), in order with the others', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { maxRecordBytes: 1000 });
    const events = [event(1), { type: 'statement', text: 'SELECT "é😀"\t\n', n: 2 }, event(3), { type: 'x', n: 4 }, event(5)];
    // In one turn, and through the writer thread: texts and bytes in one message.
    const tickets = events.map((e, i) => (i % 2 === 1 ? s.enqueueCanonical(Buffer.from(canonicalJson(e))) : s.enqueue(e)));
    assert.ok(tickets.every((t) => typeof t === 'number'));
    await s.settled(tickets.at(-1) as number);
    const reason = (r: number | AuditWriteError) => (typeof r === 'number' ? 'ok' : r.reason);
    assert.equal(reason(s.enqueueCanonical(Buffer.from('[1]'))), 'invalid-event');
    assert.equal(reason(s.enqueueCanonical(Buffer.from(`{"big":"${'x'.repeat(2000)}"}`))), 'invalid-event');
    await s.close();
    const got = [];
    for await (const r of readRecords(dir)) got.push(r.event);
    assert.deepEqual(got, JSON.parse(JSON.stringify(events)));
    const report = await verifyStore(dir, { publicKey: s.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
  });

  it('takes a run of canonical records (as the native relay hands them) all together, or none of them', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { maxRecordBytes: 1000 });
    const a = s.enqueue(event(1));
    const last = s.enqueueCanonicalRun(recordRun('{"n":2}', '{"n":3,"t":"é😀"}', '{"n":4}'), 3);
    assert.equal(last, (a as number) + 3, 'three tickets, in order');
    // One not an object, one too large, one cut short: nothing of the run is taken.
    assert.equal(s.enqueueCanonicalRun(recordRun('{"n":5}', '[6]'), 2), 0);
    assert.equal(s.enqueueCanonicalRun(recordRun('{"n":5}', `{"big":"${'x'.repeat(2000)}"}`), 2), 0);
    assert.equal(s.enqueueCanonicalRun(recordRun('{"n":5}', '{"n":6}').subarray(0, 20), 2), 0);
    assert.equal(s.enqueueCanonicalRun(Buffer.alloc(0), 0), 0, 'an empty run is no run');
    // In the same message to the writer: a text JSON.stringify made (canonicalized by the writer,
    // found by its place among texts and runs), a text given as bytes, another run, a text.
    s.enqueue({ n: 5, at: new Date(0) });
    s.enqueueCanonical(Buffer.from('{"n":6}'));
    s.enqueueCanonicalRun(recordRun('{"n":7}', '{"n":8}'), 2);
    const end = s.enqueue({ z: 1, n: 9 });
    await s.settled(end as number);
    await s.close();
    const got = [];
    for await (const r of readRecords(dir)) got.push(r.event);
    assert.deepEqual(got, [
      event(1),
      { n: 2 },
      { n: 3, t: 'é😀' },
      { n: 4 },
      { at: '1970-01-01T00:00:00.000Z', n: 5 },
      { n: 6 },
      { n: 7 },
      { n: 8 },
      { n: 9, z: 1 },
    ]);
    assert.equal((await verifyStore(dir, { publicKey: s.publicKey })).ok, true);
  });
});

describe('audit store: durability', () => {
  it('strict: append resolves only after the record is fdatasync-ed; concurrent appends share a write and a sync', async () => {
    const { dir, keyFile } = tempRoot();
    const io = new RecordingIo();
    const s = await openStore(dir, keyFile, { durability: 'strict', io });
    const before = { writes: io.writes, syncs: io.syncs };
    let unsyncedAtResolve = -1;
    await s.append(event(0)).then(() => (unsyncedAtResolve = io.unsyncedSegmentWrites));
    assert.equal(unsyncedAtResolve, 0, 'resolved before fdatasync');
    assert.deepEqual(io.log.slice(-2), ['write segment-000001.log', 'sync segment-000001.log']);

    const unsynced: number[] = [];
    await Promise.all(Array.from({ length: 500 }, (_, i) => s.append(event(i + 1)).then(() => unsynced.push(io.unsyncedSegmentWrites))));
    assert.ok(
      unsynced.every((u) => u === 0),
      'every append resolved after its fdatasync',
    );
    const writes = io.writes - before.writes - 1;
    assert.ok(writes <= 3, `500 concurrent appends took ${writes} writes (group commit)`);
    assert.equal(s.stats().appended, 501);
    await s.close();
  });

  it('batched: append resolves after the write; fdatasync follows within fsyncIntervalMs', async () => {
    const { dir, keyFile } = tempRoot();
    const io = new RecordingIo();
    const s = await openStore(dir, keyFile, { durability: 'batched', fsyncIntervalMs: 30, io });
    let unsyncedAtResolve = 0;
    await s.append(event(0)).then(() => (unsyncedAtResolve = io.unsyncedSegmentWrites));
    assert.equal(unsyncedAtResolve, 1);
    await sleep(120);
    assert.equal(io.unsyncedSegmentWrites, 0);
    await s.close();
  });

  it('a checkpoint never covers records that are not synced', async () => {
    const { dir, keyFile } = tempRoot();
    const io = new RecordingIo();
    const s = await openStore(dir, keyFile, { durability: 'batched', fsyncIntervalMs: 60_000, io });
    await appendMany(s, 0, 10);
    assert.equal(io.unsyncedSegmentWrites > 0, true);
    const cp = await s.checkpoint();
    assert.equal(cp.size, 10);
    const i = io.log.lastIndexOf('write checkpoints-000001.log');
    assert.equal(io.log[i - 1], 'sync segment-000001.log');
    await s.close();
  });
});

describe('audit store: checkpoints and segments', () => {
  it('checkpoints every N records and every T ms, and hands each to onCheckpoint', { timeout: 30_000 }, async () => {
    const { dir, keyFile } = tempRoot();
    const seen: Checkpoint[] = [];
    let next: ((c: Checkpoint) => void) | undefined;
    const s = await openStore(dir, keyFile, {
      checkpointEvery: 100,
      checkpointIntervalMs: 60_000,
      onCheckpoint: (c) => {
        seen.push(c);
        next?.(c);
      },
    });
    for (let i = 0; i < 7; i++) await appendMany(s, i * 50, 50);
    assert.deepEqual(
      seen.map((c) => c.size),
      [0, 100, 200, 300],
      'genesis, then every 100',
    );
    assert.deepEqual(s.lastCheckpoint, seen.at(-1));
    await s.close();
    assert.equal(seen.at(-1)!.size, 350, 'close covers the rest');

    // Every T ms: a store whose count bound is never reached still checkpoints, on its timer.
    const t = await openStore(dir, keyFile, {
      checkpointEvery: 1_000_000,
      checkpointIntervalMs: 50,
      onCheckpoint: (c) => {
        seen.push(c);
        next?.(c);
      },
    });
    const timed = new Promise<Checkpoint>((resolve) => (next = (c) => c.size === 400 && resolve(c)));
    await appendMany(t, 350, 50);
    const keepAlive = setInterval(() => undefined, 1000); // the store's own timers do not hold the process
    assert.equal((await timed).size, 400, 'the timer covered the last 50');
    clearInterval(keepAlive);
    assert.deepEqual(t.lastCheckpoint, seen.at(-1));
    await t.close();
  });

  it('records queued faster than the writer takes them: one batch, then the checkpoint it made due', async () => {
    const { dir, keyFile } = tempRoot();
    const seen: number[] = [];
    const s = await openStore(dir, keyFile, { checkpointEvery: 100, onCheckpoint: (c) => seen.push(c.size) });
    await appendMany(s, 0, 350); // queued together: the writer finds them waiting
    await s.close();
    assert.deepEqual(seen, [0, 350], 'genesis, then one after the batch (not one per 100 inside it); close adds none');
  });

  it('rolls segments at the size bound; each checkpoint file opens with the seal of the segment before', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { maxSegmentBytes: 8 * 1024 });
    for (let i = 0; i < 10; i++) await appendMany(s, i * 20, 20);
    await s.close();
    const segs = segmentFiles(dir);
    assert.ok(segs.length >= 3, `${segs.length} segments`);
    assert.deepEqual(
      checkpointFiles(dir),
      segs.map((f) => f.replace('segment-', 'checkpoints-')),
    );
    for (const seg of segs) {
      const firstSeq = (JSON.parse(fileLines(dir, seg)[0]!) as { seq: number }).seq;
      const opening = JSON.parse(fileLines(dir, seg.replace('segment-', 'checkpoints-'))[0]!) as Checkpoint;
      assert.equal(opening.size, firstSeq - 1, seg);
    }
    assert.deepEqual(await seqs(dir), range(1, 200));
    assert.equal((await verifyStore(dir, { publicKey: s.publicKey })).ok, true);
  });
});

describe('audit store: crash recovery', () => {
  it('cuts a torn last record line, reports it, and continues the chain', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { checkpointEvery: 5 });
    await appendMany(s, 0, 20);
    await s.close();
    const seg = path.join(dir, 'segment-000001.log');
    const sizeBefore = statSync(seg).size;
    const full = fileLines(dir, 'segment-000001.log')[5]!;
    appendFileSync(seg, full.slice(0, 100)); // a write cut short by a crash: no "\n"
    // verify on the crashed store: not tampering, only a warning
    const crashed = await verifyStore(dir, { publicKey: s.publicKey });
    assert.equal(crashed.ok, true);
    assert.match(crashed.warnings.join(), /incomplete last line/);

    const s2 = await openStore(dir, keyFile);
    assert.deepEqual(s2.recovery.truncated, [{ file: 'segment-000001.log', offset: sizeBefore, bytes: 100, line: 21 }]);
    assert.equal(s2.recovery.lastSeq, 20);
    assert.equal((await s2.append(event(20))).seq, 21);
    await s2.close();
    assert.deepEqual(await seqs(dir), range(1, 21));
    assert.equal((await verifyStore(dir, { publicKey: s2.publicKey })).ok, true);
  });

  it('cuts zero-filled garbage after the last record and a torn checkpoint line, then checkpoints the uncovered records', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { checkpointEvery: 1000 });
    await appendMany(s, 0, 10);
    await s.checkpoint();
    await appendMany(s, 10, 5);
    await s.close();
    // The state a crash leaves: the last checkpoint (made by close) never written, the segment
    // extended with zeros (size updated, data blocks not), a checkpoint line cut mid-write.
    const cps = fileLines(dir, 'checkpoints-000001.log');
    writeFileSync(path.join(dir, 'checkpoints-000001.log'), `${cps.slice(0, -1).join('\n')}\n{"frontier":["ab`);
    appendFileSync(path.join(dir, 'segment-000001.log'), Buffer.alloc(4096));
    const emitted: Checkpoint[] = [];
    const s2 = await openStore(dir, keyFile, { onCheckpoint: (c) => emitted.push(c) });
    assert.deepEqual(
      s2.recovery.truncated.map((t) => [t.file, t.bytes, t.line]),
      [
        ['checkpoints-000001.log', 16, 3],
        ['segment-000001.log', 4096, 16],
      ],
    );
    assert.equal(s2.recovery.lastSeq, 15);
    assert.equal(s2.recovery.uncheckpointedRecords, 5);
    assert.equal(s2.lastCheckpoint.size, 15, 'open checkpoints the replayed records');
    await s2.append(event(15));
    await s2.close();
    const report = await verifyStore(dir, { publicKey: s2.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
    assert.equal(report.lastSeq, 16);
  });

  it('refuses to open (and deletes nothing) when a damaged line has valid records after it', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { checkpointEvery: 1000 });
    await appendMany(s, 0, 10);
    await s.checkpoint();
    await appendMany(s, 10, 10);
    await s.close();
    // close() checkpointed all 20; drop that checkpoint line so records 11..20 are "after the checkpoint"
    const cps = fileLines(dir, 'checkpoints-000001.log');
    writeFileSync(path.join(dir, 'checkpoints-000001.log'), `${cps.slice(0, -1).join('\n')}\n`);
    editLine(dir, 'segment-000001.log', 13, (l) => l.replace('"u12"', '"u99"'));
    const size = statSync(path.join(dir, 'segment-000001.log')).size;
    await assert.rejects(openStore(dir, keyFile), (err: Error) => err instanceof AuditCorruptError && err.line === 13);
    assert.equal(statSync(path.join(dir, 'segment-000001.log')).size, size);
  });

  it('refuses to open when a checkpoint covers records the store no longer holds', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile);
    await appendMany(s, 0, 10);
    await s.close();
    const lines = fileLines(dir, 'segment-000001.log');
    writeFileSync(path.join(dir, 'segment-000001.log'), `${lines.slice(0, 7).join('\n')}\n`);
    await assert.rejects(openStore(dir, keyFile), (err: Error) => err instanceof AuditCorruptError && /covers 10 records/.test(err.message));
  });
});

describe('audit store: write failures', () => {
  it('rejects with AuditWriteError(io, ENOSPC), reports unhealthy, cuts the partial write, and recovers', async () => {
    const { dir, keyFile } = tempRoot();
    const io = new RecordingIo();
    const health: [boolean, string | undefined][] = [];
    const s = await openStore(dir, keyFile, { durability: 'strict', io, onHealthChange: (h, e) => health.push([h, e?.errno]) });
    await appendMany(s, 0, 5);
    const size = statSync(path.join(dir, 'segment-000001.log')).size;
    io.failWrites = { code: 'ENOSPC', partial: true };
    const results = await Promise.allSettled([s.append(event(5)), s.append(event(6))]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      const err = (r as PromiseRejectedResult).reason as AuditWriteError;
      assert.ok(err instanceof AuditWriteError);
      assert.equal(err.reason, 'io');
      assert.equal(err.errno, 'ENOSPC');
    }
    assert.equal(s.healthy, false);
    assert.equal(s.lastError?.errno, 'ENOSPC');
    assert.equal(statSync(path.join(dir, 'segment-000001.log')).size, size, 'the partial write was cut off');
    io.failWrites = undefined;
    assert.equal((await s.append(event(7))).seq, 6, 'the rejected records took no seq');
    assert.equal(s.healthy, true);
    assert.deepEqual(health, [
      [false, 'ENOSPC'],
      [true, undefined],
    ]);
    await s.close();
    assert.deepEqual(await seqs(dir), range(1, 6));
    assert.equal((await verifyStore(dir, { publicKey: s.publicKey })).ok, true);
  });

  it('a failed checkpoint write leaves the checkpoint file as it was', async () => {
    const { dir, keyFile } = tempRoot();
    const io = new RecordingIo();
    const s = await openStore(dir, keyFile, { io });
    await appendMany(s, 0, 5);
    const size = statSync(path.join(dir, 'checkpoints-000001.log')).size;
    io.failWrites = { code: 'EIO', partial: true };
    await assert.rejects(s.checkpoint(), (e: Error) => e instanceof AuditWriteError && e.errno === 'EIO');
    assert.equal(s.healthy, false);
    assert.equal(statSync(path.join(dir, 'checkpoints-000001.log')).size, size);
    io.failWrites = undefined;
    assert.equal((await s.checkpoint()).size, 5);
    await s.close();
    assert.equal((await verifyStore(dir, { publicKey: s.publicKey })).ok, true);
  });
});
