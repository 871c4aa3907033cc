// verifyStore after each kind of tampering. Every test first shows the untouched store passes,
// then tampers and asserts the exact reason, file, line and seq reported.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { canonicalJson } from '../../../src/audit/store/canonical-json.js';
import type { Checkpoint } from '../../../src/audit/store/checkpoint.js';
import { exportCheckpoint, verifyExportedCheckpoint, type ExportedCheckpoint } from '../../../src/audit/store/checkpoint-export.js';
import { formatRecordLine, recordHash } from '../../../src/audit/store/record.js';
import { loadSigningKey } from '../../../src/audit/store/signing-key.js';
import type { KeyObject } from 'node:crypto';
import { verifyStore, type VerifyFailure, type VerifyOptions } from '../../../src/audit/store/verify.js';
import { appendMany, checkpointFiles, editLine, fileLines, locate, openStore, segmentFiles, tempRoot, writeFileLines } from './helpers.js';

const RECORDS = 600;
let dir: string;
let publicKey: KeyObject;
let witness: ExportedCheckpoint;

/** 600 records of ~300 bytes in 16 KiB segments (about 11), a checkpoint every 50. */
beforeEach(async () => {
  const t = tempRoot();
  dir = t.dir;
  const store = await openStore(dir, t.keyFile, { checkpointEvery: 50, maxSegmentBytes: 16 * 1024 });
  for (let i = 0; i < RECORDS; i += 25) await appendMany(store, i, 25);
  await store.close();
  publicKey = store.publicKey;
  witness = store.exportCheckpoint(); // copied off the host
  assert.equal(witness.checkpoint.size, RECORDS);
});

async function verify(extra: Partial<VerifyOptions> = {}): Promise<VerifyFailure | undefined> {
  const report = await verifyStore(dir, { publicKey, ...extra });
  assert.equal(report.ok, report.failure === undefined);
  return report.failure;
}

function pick(f: VerifyFailure | undefined): Partial<VerifyFailure> | undefined {
  return f && { reason: f.reason, file: f.file, line: f.line, seq: f.seq, ...(f.checkpoint === undefined ? {} : { checkpoint: f.checkpoint }) };
}

/** Rewrites records from `from` on with valid hashes and links, as an attacker without the key can. */
function rechain(fromSeq: number): void {
  let prev: string | undefined;
  for (const file of segmentFiles(dir)) {
    const lines = fileLines(dir, file).map((l) => {
      const r = JSON.parse(l) as { seq: number; time: string; prev: string; event: object };
      if (r.seq < fromSeq) {
        prev = (JSON.parse(l) as { hash: string }).hash;
        return l;
      }
      const ev = canonicalJson(r.event);
      const hash = recordHash(r.seq, r.time, prev!, ev).toString('hex');
      const out = formatRecordLine(r.seq, r.time, prev!, hash, ev).slice(0, -1);
      prev = hash;
      return out;
    });
    writeFileLines(dir, file, lines);
  }
}

describe('verifyStore', () => {
  it('passes on the untouched store, also from a later checkpoint and against the witness', async () => {
    const report = await verifyStore(dir, { publicKey, lastKnownCheckpoint: witness });
    assert.equal(report.ok, true);
    assert.equal(report.records, RECORDS);
    assert.equal(report.firstSeq, 1);
    assert.equal(report.lastSeq, RECORDS);
    assert.ok(report.checkpoints > RECORDS / 50);
    assert.deepEqual(report.warnings, []);
    const from = await verifyStore(dir, { publicKey, fromCheckpoint: 5 });
    assert.equal(from.ok, true);
    assert.equal(from.firstSeq, from.anchor!.size + 1);
    assert.equal(verifyExportedCheckpoint(JSON.stringify(witness), publicKey).ok, true);
    assert.equal(verifyExportedCheckpoint(witness, { keyId: witness.keyId }).ok, true);
  });

  it('a changed byte inside an event: hash-mismatch at that record', async () => {
    assert.equal(await verify(), undefined);
    const at = locate(dir, 123);
    editLine(dir, at.file, at.line, (l) => l.replace('"user":"u122"', '"user":"u922"'));
    assert.deepEqual(pick(await verify()), { reason: 'hash-mismatch', file: at.file, line: at.line, seq: 123 });
  });

  it('a changed byte that breaks the line: bad-line at that record', async () => {
    assert.equal(await verify(), undefined);
    const at = locate(dir, 124);
    editLine(dir, at.file, at.line, (l) => l.replace('"server":"srv1"', '"server" :"srv1"'));
    assert.deepEqual(pick(await verify()), { reason: 'bad-line', file: at.file, line: at.line, seq: 124 });
  });

  it('a changed event with its own hash recomputed: prev-mismatch at the next record', async () => {
    assert.equal(await verify(), undefined);
    const at = locate(dir, 321);
    editLine(dir, at.file, at.line, (l) => {
      const r = JSON.parse(l) as { seq: number; time: string; prev: string; event: Record<string, unknown> };
      const ev = canonicalJson({ ...r.event, user: 'someone-else' });
      return formatRecordLine(r.seq, r.time, r.prev, recordHash(r.seq, r.time, r.prev, ev).toString('hex'), ev).slice(0, -1);
    });
    const next = locate(dir, 322);
    assert.deepEqual(pick(await verify()), { reason: 'prev-mismatch', file: next.file, line: next.line, seq: 322 });
  });

  for (const [seq, where] of [
    [150, 'inside a segment'],
    [200, 'the last of a segment, so the next one opens a segment'],
  ] as const) {
    it(`a removed record (${where}): seq-gap at the record after it`, async () => {
      assert.equal(await verify(), undefined);
      const at = locate(dir, seq);
      writeFileLines(
        dir,
        at.file,
        fileLines(dir, at.file).filter((_, i) => i !== at.line - 1),
      );
      const after = locate(dir, seq + 1);
      if (seq === 200) assert.equal(after.line, 1);
      assert.deepEqual(pick(await verify()), { reason: 'seq-gap', file: after.file, line: after.line, seq: seq + 1 });
    });
  }

  it('a reordered pair: reordered at the first of the two', async () => {
    assert.equal(await verify(), undefined);
    let s = 300;
    while (locate(dir, s).file !== locate(dir, s + 1).file) s++;
    const a = locate(dir, s);
    const b = locate(dir, s + 1);
    const lines = fileLines(dir, a.file);
    [lines[a.line - 1], lines[b.line - 1]] = [lines[b.line - 1]!, lines[a.line - 1]!];
    writeFileLines(dir, a.file, lines);
    assert.deepEqual(pick(await verify()), { reason: 'reordered', file: a.file, line: a.line, seq: s + 1 });
  });

  it('a removed record with the chain recomputed after it: root-mismatch at the next checkpoint', async () => {
    assert.equal(await verify(), undefined);
    const at = locate(dir, 210);
    writeFileLines(
      dir,
      at.file,
      fileLines(dir, at.file).filter((_, i) => i !== at.line - 1),
    );
    // renumber and rehash everything after, so seq and links look right
    for (const file of segmentFiles(dir)) {
      writeFileLines(
        dir,
        file,
        fileLines(dir, file).map((l) => {
          const r = JSON.parse(l) as { seq: number };
          return r.seq > 210 ? l.replace(`{"seq":${r.seq},`, `{"seq":${r.seq - 1},`) : l;
        }),
      );
    }
    rechain(210);
    const f = await verify();
    assert.equal(f?.reason, 'root-mismatch');
    assert.equal(f?.seq, 250, 'the first checkpoint after the change covers records 201..250');
    assert.match(f!.file, /^checkpoints-/);
  });

  it('a cut-off tail, checkpoints cut too: passes alone, truncated against the witness', async () => {
    assert.equal(await verify(), undefined);
    const lastSeg = segmentFiles(dir).at(-1)!;
    const keep = fileLines(dir, lastSeg).filter((l) => (JSON.parse(l) as { seq: number }).seq <= RECORDS - 10);
    writeFileLines(dir, lastSeg, keep);
    const lastCk = checkpointFiles(dir).at(-1)!;
    writeFileLines(
      dir,
      lastCk,
      fileLines(dir, lastCk).filter((l) => (JSON.parse(l) as Checkpoint).size <= RECORDS - 10),
    );
    assert.equal(await verify(), undefined, 'without a copy held elsewhere a clean cut cannot be seen');
    assert.deepEqual(pick(await verify({ lastKnownCheckpoint: witness })), {
      reason: 'truncated',
      file: lastSeg,
      line: keep.length + 1,
      seq: RECORDS - 9,
      checkpoint: witness.checkpoint.index,
    });
  });

  it('a cut-off tail, local checkpoints left: truncated without a witness', async () => {
    assert.equal(await verify(), undefined);
    const lastSeg = segmentFiles(dir).at(-1)!;
    const keep = fileLines(dir, lastSeg).slice(0, -3);
    writeFileLines(dir, lastSeg, keep);
    const f = await verify();
    assert.deepEqual(pick(f), { reason: 'truncated', file: lastSeg, line: keep.length + 1, seq: RECORDS - 2, checkpoint: f?.checkpoint });
  });

  it('a cut-off tail replaced with forged records: root-mismatch against the witness', async () => {
    assert.equal(await verify(), undefined);
    const lastSeg = segmentFiles(dir).at(-1)!;
    const lastCk = checkpointFiles(dir).at(-1)!;
    writeFileLines(
      dir,
      lastCk,
      fileLines(dir, lastCk).filter((l) => (JSON.parse(l) as Checkpoint).size <= RECORDS - 10),
    );
    editLine(dir, lastSeg, fileLines(dir, lastSeg).length - 5, (l) => l.replace(/"user":"u\d+"/, '"user":"nobody"'));
    rechain(RECORDS - 5);
    assert.equal(await verify(), undefined, 'rewritten after the last local checkpoint: the chain alone holds');
    assert.deepEqual(pick(await verify({ lastKnownCheckpoint: witness })), {
      reason: 'root-mismatch',
      file: 'witness',
      line: 0,
      seq: RECORDS,
      checkpoint: witness.checkpoint.index,
    });
  });

  it('an altered checkpoint signature: checkpoint-signature at that line', async () => {
    assert.equal(await verify(), undefined);
    const ck = checkpointFiles(dir)[3]!;
    const cp = JSON.parse(fileLines(dir, ck)[1]!) as Checkpoint;
    editLine(dir, ck, 2, (l) => {
      const sig = Buffer.from(cp.sig, 'base64');
      sig[10]! ^= 1;
      return l.replace(cp.sig, sig.toString('base64'));
    });
    assert.deepEqual(pick(await verify()), { reason: 'checkpoint-signature', file: ck, line: 2, seq: cp.size, checkpoint: cp.index });
  });

  it('an altered checkpoint field (size and root, old signature): checkpoint-signature', async () => {
    assert.equal(await verify(), undefined);
    const ck = checkpointFiles(dir)[2]!;
    const cp = JSON.parse(fileLines(dir, ck)[1]!) as Checkpoint;
    editLine(dir, ck, 2, (l) => l.replace(`"root":"${cp.root}"`, `"root":"${'0'.repeat(64)}"`));
    assert.deepEqual(pick(await verify()), { reason: 'checkpoint-signature', file: ck, line: 2, seq: cp.size, checkpoint: cp.index });
  });

  it('a removed checkpoint line: checkpoint-chain at the next one', async () => {
    assert.equal(await verify(), undefined);
    const ck = checkpointFiles(dir)[4]!;
    const lines = fileLines(dir, ck);
    assert.ok(lines.length >= 2);
    const next = JSON.parse(lines[1]!) as Checkpoint;
    writeFileLines(
      dir,
      ck,
      lines.filter((_, i) => i !== 0),
    ); // the opening checkpoint
    const f = await verify();
    assert.deepEqual(pick(f), { reason: 'checkpoint-chain', file: ck, line: 1, seq: next.size, checkpoint: next.index });
  });

  it('checkpoint lines cut off the end: checkpoint-missing against the witness', async () => {
    assert.equal(await verify(), undefined);
    const ck = checkpointFiles(dir).at(-1)!;
    const lines = fileLines(dir, ck);
    writeFileLines(dir, ck, lines.slice(0, -1));
    assert.equal(await verify(), undefined);
    const f = await verify({ lastKnownCheckpoint: witness });
    assert.equal(f?.reason, 'checkpoint-missing');
    assert.equal(f?.checkpoint, witness.checkpoint.index);
  });

  it('a deleted segment in the middle (with or without its checkpoint file): segment-missing, naming the first lost record', async () => {
    assert.equal(await verify(), undefined);
    const segs = segmentFiles(dir);
    const gone = segs[4]!;
    const firstLost = (JSON.parse(fileLines(dir, gone)[0]!) as { seq: number }).seq;
    rmSync(path.join(dir, gone));
    assert.deepEqual(pick(await verify()), { reason: 'segment-missing', file: gone, line: 0, seq: firstLost });
    rmSync(path.join(dir, gone.replace('segment-', 'checkpoints-')));
    assert.deepEqual(pick(await verify()), { reason: 'segment-missing', file: gone, line: 0, seq: firstLost });
  });

  it('a deleted first checkpoint file: no-anchor; checkpoints by another key: checkpoint-signature', async () => {
    const other = await loadSigningKey(path.join(path.dirname(dir), 'other.pem'));
    const foreign = exportCheckpoint(witness.checkpoint, other.publicKey); // claims to be by `other`
    assert.equal(verifyExportedCheckpoint(foreign, { keyId: other.keyId }).ok, false);
    assert.equal(verifyExportedCheckpoint(witness, other.publicKey).ok, false);
    assert.deepEqual(pick(await verify({ lastKnownCheckpoint: { ...witness.checkpoint, sig: Buffer.alloc(64).toString('base64') } })), {
      reason: 'checkpoint-signature',
      file: 'witness',
      line: 0,
      seq: undefined,
      checkpoint: witness.checkpoint.index,
    });
    assert.equal((await verifyStore(dir, { publicKey: other.publicKey })).failure?.reason, 'checkpoint-signature');
    rmSync(path.join(dir, 'checkpoints-000001.log'));
    assert.deepEqual(pick(await verify()), { reason: 'no-anchor', file: 'checkpoints-000001.log', line: 1, seq: undefined });
  });

  it('from a checkpoint: damage before it is out of range, damage after it is found', async () => {
    const at = locate(dir, 100);
    editLine(dir, at.file, at.line, (l) => l.replace('"rows":99', '"rows":98'));
    assert.equal((await verify())?.seq, 100);
    const from = await verifyStore(dir, { publicKey, fromCheckpoint: 6 });
    assert.ok(from.anchor!.size > 100);
    assert.equal(from.ok, true, from.failure?.message);
    const later = locate(dir, 500);
    editLine(dir, later.file, later.line, (l) => l.replace('"rows":499', '"rows":4'));
    const before500 = checkpointFiles(dir)
      .flatMap((f) => fileLines(dir, f).map((l) => JSON.parse(l) as Checkpoint))
      .filter((c) => c.size < 500)
      .at(-1)!;
    const from450 = await verifyStore(dir, { publicKey, fromCheckpoint: before500.index });
    assert.equal(from450.anchor!.size, 450);
    assert.deepEqual(pick(from450.failure), {
      reason: 'hash-mismatch',
      file: later.file,
      line: later.line,
      seq: 500,
    });
  });

  it('an exported checkpoint with one changed field no longer verifies', () => {
    const changed = { ...witness, checkpoint: { ...witness.checkpoint, size: witness.checkpoint.size + 1 } };
    assert.deepEqual(verifyExportedCheckpoint(changed, publicKey), { ok: false, message: 'frontier does not fit the size' });
    const moved = { ...witness, checkpoint: { ...witness.checkpoint, time: '2030-01-01T00:00:00.000Z' } };
    assert.deepEqual(verifyExportedCheckpoint(moved, publicKey), { ok: false, message: 'signature does not verify' });
    const hash = createHash('sha256').update('x').digest('hex');
    assert.equal(verifyExportedCheckpoint({ ...witness, keyId: hash }, { keyId: hash }).ok, false);
  });
});
