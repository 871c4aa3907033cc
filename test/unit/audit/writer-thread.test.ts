// The audit store with its writer in a worker thread (the default when no test file operations or
// clock are given): canonical form computed there from JSON.stringify texts, results in order,
// invalid events rejected in their place, a real ENOSPC (a small tmpfs) reported as health and as
// AuditLog.onFailure/onRecovered, strict durability through AuditLog.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { canonicalJson, canonicalJsonOfParsed } from '../../../src/audit/store/canonical-json.js';
import { AuditWriteError } from '../../../src/audit/store/errors.js';
import { readRecords } from '../../../src/audit/store/read-records.js';
import { verifyStore } from '../../../src/audit/store/verify.js';
import { EventBus } from '../../../src/events/bus.js';
import type { AnyEvent } from '../../../src/events/types.js';
import { event, openStore, recordRun, tempRoot } from './helpers.js';

const silent = pino({ level: 'silent' });

describe('canonical JSON of a parsed text', () => {
  it('is canonicalJson for every JSON value, also with digit keys, __proto__ and shapes that share a first key', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', '0', '10', '9', 'a', 'b', 'é', '\u{1F600}', 'type'));
    const value = fc.letrec((tie) => ({
      json: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 2 }),
        fc.array(tie('json'), { maxLength: 4 }),
        fc.dictionary(key, tie('json'), { maxKeys: 6 }),
      ),
    })).json;
    fc.assert(
      fc.property(value, (v) => {
        const parsed: unknown = JSON.parse(JSON.stringify(v) ?? 'null');
        assert.equal(canonicalJsonOfParsed(parsed), canonicalJson(parsed));
      }),
      { numRuns: 2000 },
    );
    // Same first key, same length, other keys: not served from the other shape's order.
    assert.equal(canonicalJsonOfParsed({ t: 1, b: 2, a: 3 }), '{"a":3,"b":2,"t":1}');
    assert.equal(canonicalJsonOfParsed({ t: 1, z: 2, c: 3 }), '{"c":3,"t":1,"z":2}');
    assert.equal(canonicalJsonOfParsed(JSON.parse('{"__proto__":{"x":1},"a":0}')), '{"__proto__":{"x":1},"a":0}');
  });
});

describe('audit store: writer thread', () => {
  it('keeps the order of results across invalid events, numbers only the written ones, and verifies', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { durability: 'strict' });
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 70; i++) deep = { d: deep };
    const outcomes = await Promise.allSettled([
      s.append(event(1)),
      s.append({ type: 'deep', deep }), // only the writer's canonical form sees the depth
      s.append(event(2)),
      s.append({ type: 'dated', at: new Date(0), skipped: undefined, n: NaN }),
    ]);
    assert.equal(outcomes[0]!.status, 'fulfilled');
    assert.equal(outcomes[1]!.status, 'rejected');
    assert.equal(((outcomes[1] as PromiseRejectedResult).reason as AuditWriteError).reason, 'invalid-event');
    const ok = outcomes.filter((o): o is PromiseFulfilledResult<{ seq: number; hash: string }> => o.status === 'fulfilled').map((o) => o.value);
    assert.deepEqual(
      ok.map((r) => r.seq),
      [1, 2, 3],
    );
    assert.equal(s.stats().appended, 3);
    assert.equal(s.stats().pending, 0);
    await s.close();
    const records = [];
    for await (const r of readRecords(dir)) records.push(r);
    assert.deepEqual(
      records.map((r) => r.hash),
      ok.map((r) => r.hash),
    );
    assert.deepEqual(records[2]!.event, { type: 'dated', at: '1970-01-01T00:00:00.000Z', n: null });
    assert.equal(records[1]!.prev, records[0]!.hash);
    const report = await verifyStore(dir, { publicKey: s.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
    assert.equal(report.records, 3);
  });

  it('a turn of many events (canonical, JSON.stringify texts, newlines and non-ASCII in strings) goes in one message and comes back in order, as sent', async () => {
    const { dir, keyFile } = tempRoot();
    const s = await openStore(dir, keyFile, { durability: 'batched' });
    const texts = ['line\nbreak', 'ünïcødé \u2028 😀', '"quoted" \\ back', '', 'x'.repeat(9000)];
    const events: Record<string, unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const e = { ...event(i), text: texts[i % texts.length] };
      // Every third one with a Date: not plain data, canonicalized by the writer.
      events.push(i % 3 === 0 ? { ...e, at: new Date(i) } : e);
    }
    const results = await Promise.all(events.map((e) => s.append(e)));
    assert.deepEqual(
      results.map((r) => r.seq),
      events.map((_, i) => i + 1),
    );
    await s.close();
    const records = [];
    for await (const r of readRecords(dir)) records.push(r);
    assert.deepEqual(
      records.map((r) => r.hash),
      results.map((r) => r.hash),
    );
    assert.deepEqual(
      records.map((r) => r.event),
      events.map((e) => JSON.parse(JSON.stringify(e)) as unknown),
    );
    const report = await verifyStore(dir, { publicKey: s.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
  });

  it('reopens a store written by the writer thread and continues its chain', async () => {
    const { dir, keyFile } = tempRoot();
    const a = await openStore(dir, keyFile);
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.append(event(i))));
    await a.close();
    const b = await openStore(dir, keyFile);
    assert.equal(b.recovery.lastSeq, 300);
    assert.equal((await b.append(event(300))).seq, 301);
    await b.close();
    const report = await verifyStore(dir, { publicKey: b.publicKey });
    assert.equal(report.ok, true, report.failure?.message);
    assert.equal(report.records, 301);
  });

  it('a writer thread that dies fails what it had not acknowledged, reports unhealthy, refuses more, and still closes', { timeout: 30_000 }, async () => {
    const { dir, keyFile } = tempRoot();
    const health: boolean[] = [];
    const s = await openStore(dir, keyFile, { durability: 'strict', onHealthChange: (h) => health.push(h) });
    assert.equal((await s.append(event(0))).seq, 1);
    // The failure is provoked from outside (no real fault kills a thread on demand): end the thread.
    const link = (s as unknown as { link: { terminate(): Promise<void> } }).link;
    const pending = s.append(event(1));
    await link.terminate();
    await assert.rejects(pending, (e: Error) => e instanceof AuditWriteError && e.reason === 'io');
    assert.equal(s.healthy, false);
    assert.deepEqual(health, [false]);
    await assert.rejects(s.append(event(2)), (e: Error) => e instanceof AuditWriteError && e.reason === 'io');
    await s.close();
    const again = await openStore(dir, keyFile);
    assert.ok(again.recovery.lastSeq >= 1);
    await again.close();
    assert.equal((await verifyStore(dir, { publicKey: again.publicKey })).ok, true);
  });
});

describe('AuditLog', () => {
  it('appendRecords: a run of relay records is taken whole; with one the store refuses, each goes its own way', async () => {
    const { root, dir } = tempRoot();
    const log = await AuditLog.open(
      { dir, keyFile: path.join(root, 'key.pem'), witnessFile: path.join(root, 'w.json'), durability: 'batched', policy: 'failOpen', log: silent },
      new EventBus(),
    );
    log.appendRecords(recordRun('{"n":1,"type":"statement"}', '{"n":2,"type":"statement"}'), 2);
    // An event of more than a MiB is not taken as it is: it is cut down (as any event), the rest
    // of its run recorded as given.
    log.appendRecords(
      recordRun('{"n":3,"type":"statement"}', `{"n":4,"text":"${'x'.repeat(1100 * 1024)}","type":"statement"}`, '{"n":5,"type":"statement"}'),
      3,
    );
    await log.close();
    const got: { n: number; text?: unknown }[] = [];
    for await (const r of readRecords(dir)) got.push(r.event as unknown as { n: number; text?: unknown });
    assert.deepEqual(
      got.map((e) => e.n),
      [1, 2, 3, 4, 5],
    );
    assert.notEqual(got[3]!.text, 'x'.repeat(1100 * 1024), 'the large one was cut down');
  });

  it('strict: durable() and pendingDurable() wait for the fdatasync of everything published so far', async () => {
    const { root, dir, keyFile } = tempRoot();
    const bus = new EventBus();
    const log = await AuditLog.open(
      { dir, keyFile, witnessFile: path.join(root, 'witness.json'), durability: 'strict', policy: 'failClosed', log: silent },
      bus,
    );
    assert.equal(log.pendingDurable(), null);
    const syncs = log.store.stats().syncs;
    for (let i = 0; i < 5; i++) bus.publish(event(i) as unknown as AnyEvent);
    const p = log.pendingDurable();
    assert.ok(p, 'events in flight');
    assert.equal(log.pendingDurable(), p, 'one promise per newest event, not one per call');
    await log.durable();
    assert.equal(log.store.stats().appended, 5);
    assert.ok(log.store.stats().syncs > syncs);
    assert.equal(log.pendingDurable(), null);
    await log.append(event(5) as unknown as AnyEvent);
    assert.equal(log.store.stats().lastSeq, 6);
    await log.close();
    const witness = JSON.parse(readFileSync(path.join(root, 'witness.json'), 'utf8')) as { checkpoint: { size: number } };
    assert.equal(witness.checkpoint.size, 6, 'the witness holds the last checkpoint (written at close)');
  });

  it('the witness file is rewritten at most once a second under a burst of checkpoints, and holds the last one at close', async () => {
    const { root: dirRoot, dir, keyFile } = tempRoot();
    const witnessFile = path.join(dirRoot, 'witness.json');
    const bus = new EventBus();
    const log = await AuditLog.open({ dir, keyFile, witnessFile, durability: 'batched', policy: 'failClosed', log: silent }, bus);
    let rewrites = 0;
    const watcher = watch(dirRoot, (type, name) => {
      if (type === 'rename' && name === 'witness.json') rewrites++;
    });
    try {
      // Five rounds of 1,000 records, each written before the next is queued: a checkpoint
      // after each, five in a fraction of a second. (All 5,000 queued at once would let a writer
      // that falls behind take them in one or two batches, and checkpoint once or twice.)
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 999; i++) bus.publish(event(round * 1000 + i) as unknown as AnyEvent);
        await log.append(event(round * 1000 + 999) as unknown as AnyEvent);
      }
      await log.append(event(5000) as unknown as AnyEvent);
      assert.ok(log.store.stats().checkpoints >= 5, `${log.store.stats().checkpoints} checkpoints`);
      await log.close();
      await new Promise((r) => setTimeout(r, 100)); // the watcher's last events
    } finally {
      watcher.close();
    }
    assert.ok(rewrites >= 1 && rewrites <= 2, `${rewrites} rewrites: the first checkpoint's, then the last one's at close`);
    const witness = JSON.parse(readFileSync(witnessFile, 'utf8')) as { checkpoint: { size: number } };
    assert.equal(witness.checkpoint.size, 5001, 'the witness holds the last checkpoint (written at close)');
  });

  const root = process.getuid?.() === 0;
  it('failOpen: a full disk (tmpfs) calls onFailure once per unhealthy period and onRecovered when writes work again', {
    skip: root ? false : 'needs root to mount a small tmpfs',
  }, async () => {
    const { root: tmp } = tempRoot();
    const mnt = path.join(tmp, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mnt]);
    try {
      await fillAndRecover(tmp, mnt);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });
});

async function fillAndRecover(tmp: string, mnt: string): Promise<void> {
  const bus = new EventBus();
  const calls: string[] = [];
  const log = await AuditLog.open(
    {
      dir: path.join(mnt, 'audit'),
      keyFile: path.join(tmp, 'keys', 'audit.pem'),
      witnessFile: path.join(tmp, 'witness.json'),
      durability: 'strict',
      policy: 'failOpen',
      log: silent,
      onFailure: (err) => calls.push(`failure ${(err as AuditWriteError).errno ?? err.message}`),
      onRecovered: () => calls.push('recovered'),
    },
    bus,
  );
  await log.append(event(0) as unknown as AnyEvent);
  assert.equal(log.healthy, true);
  // Fill the file system: the next record cannot be written.
  const filler = path.join(mnt, 'filler');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let filled = Buffer.alloc(0);
  try {
    for (;;) {
      filled = Buffer.concat([filled, chunk]);
      writeFileSync(filler, filled);
    }
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  const big = { ...event(1), padding: 'x'.repeat(8192) };
  await log.append(big as unknown as AnyEvent);
  assert.equal(log.healthy, false);
  assert.equal(log.acceptsConnections, true, 'failOpen keeps serving');
  await log.append(big as unknown as AnyEvent);
  assert.deepEqual(calls, ['failure ENOSPC'], 'once per unhealthy period');
  const before = log.store.stats().lastSeq;
  rmSync(filler);
  await log.append(event(2) as unknown as AnyEvent);
  assert.equal(log.healthy, true);
  assert.equal(log.store.stats().lastSeq, before + 1);
  assert.deepEqual(calls, ['failure ENOSPC', 'recovered']);
  await log.close();
  const report = await verifyStore(path.join(mnt, 'audit'), { publicKey: log.store.publicKey });
  assert.equal(report.ok, true, report.failure?.message);
  assert.equal(report.records, 2, 'the records that failed took no seq');
}
