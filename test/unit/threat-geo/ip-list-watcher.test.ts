// IpListWatcher on real files in a temporary directory: reload on change (in place, by rename,
// by polling), debouncing, the last good list kept when a file turns bad, unreadable or too
// large, bad lines reported with their numbers, and close(). Every wait is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IpListSource } from '../../../src/threat/detectors/login-anomaly.js';
import { IpListConfigError, IpListWatcher, type IpListLoaded, type IpListProblem, type IpListWatcherOptions } from '../../../src/threat/intel/ip-list-watcher.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/threat-intel/', import.meta.url));

/** A watcher over files in a fresh directory, with its events recorded. */
async function setup(files: Record<string, string | null>, options: Partial<IpListWatcherOptions> = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-iplist-'));
  for (const [name, text] of Object.entries(files)) if (text !== null) writeFileSync(path.join(dir, name), text);
  const loads: IpListLoaded[] = [];
  const problems: IpListProblem[] = [];
  const w = await IpListWatcher.open({
    files: Object.keys(files).map((f) => path.join(dir, f)),
    debounceMs: 50,
    pollIntervalMs: 100,
    onLoad: (l) => loads.push(l),
    onProblem: (p) => problems.push(p),
    ...options,
  });
  const done = () => {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, w, loads, problems, done, file: (n: string) => path.join(dir, n) };
}

/** Waits until check() is true, at most timeoutMs. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// A poll interval of a minute leaves fs.watch as the only way to notice within the wait.
const watchOnly = { pollIntervalMs: 60_000 };

test('a file edited in place is reloaded, and the old entries stop matching', async () => {
  const t = await setup({ 'tor-exits.txt': '1.2.3.4\n' }, watchOnly);
  try {
    const source: IpListSource = t.w; // what the detectors call: checked by the compiler
    assert.deepEqual(source.match('1.2.3.4'), { list: 'tor-exits', entry: '1.2.3.4' });
    writeFileSync(t.file('tor-exits.txt'), '5.6.7.8\n2001:db8::/32\n');
    await until(() => t.w.match('5.6.7.8') !== null, 'the new entry');
    assert.equal(t.w.match('1.2.3.4'), null);
    assert.deepEqual(t.w.match('2001:db8::1'), { list: 'tor-exits', entry: '2001:db8::/32' });
    assert.deepEqual(t.problems, []);
    assert.equal(t.w.status()[0]!.entries, 2);
  } finally {
    t.done();
  }
});

test('a file replaced by rename (how feed updaters write) is reloaded', async () => {
  const t = await setup({ 'feed.txt': '1.2.3.4\n' }, watchOnly);
  try {
    writeFileSync(t.file('feed.txt.tmp'), '9.9.9.0/24\n');
    renameSync(t.file('feed.txt.tmp'), t.file('feed.txt'));
    await until(() => t.w.match('9.9.9.9') !== null, 'the renamed file');
    assert.equal(t.w.match('1.2.3.4'), null);
    copyFileSync(`${fixtures}tor-bulk-exit-list.txt`, t.file('feed.txt.tmp'));
    renameSync(t.file('feed.txt.tmp'), t.file('feed.txt'));
    await until(() => t.w.match('185.220.101.1') !== null, 'a second rename');
  } finally {
    t.done();
  }
});

test('polling alone notices a change', async () => {
  const t = await setup({ 'list.txt': '1.2.3.4\n' }, { watch: 'poll', pollIntervalMs: 50 });
  try {
    writeFileSync(t.file('list.txt'), '4.3.2.1\n# longer now, so the size changes too\n');
    await until(() => t.w.match('4.3.2.1') !== null, 'the polled change');
  } finally {
    t.done();
  }
});

test('a burst of writes is one reload', async () => {
  const t = await setup({ 'list.txt': '1.2.3.4\n' }, { debounceMs: 300, pollIntervalMs: 60_000 });
  try {
    const before = t.loads.length;
    for (let i = 1; i <= 5; i++) writeFileSync(t.file('list.txt'), `10.0.0.${i}\n`);
    await until(() => t.w.match('10.0.0.5') !== null, 'the last write');
    await new Promise((r) => setTimeout(r, 400)); // a second reload would have come by now
    assert.equal(t.loads.length - before, 1);
  } finally {
    t.done();
  }
});

test('a reload with bad lines keeps the last good list and reports the lines', async () => {
  const t = await setup({ 'feed.txt': '1.2.3.4\n5.6.7.0/24\n' });
  try {
    writeFileSync(t.file('feed.txt'), '# updated\n8.8.8.8\n8.8.8.\n1.1.1.1/33\n');
    await until(() => t.problems.length > 0, 'the problem report');
    const p = t.problems[0]!;
    assert.equal(p.kind, 'bad-lines');
    assert.equal(p.inUse, 'previous');
    assert.deepEqual(p.errors.map((e) => e.line), [3, 4]);
    assert.equal(p.errorCount, 2);
    assert.match(p.message, /^IP list "feed": .*feed\.txt has 2 bad lines \(line 3: "8\.8\.8\." is not an IPv4 or IPv6 address or CIDR block; line 4: prefix length "33".*\); keeping the list loaded at .* \(2 entries\)$/);
    assert.deepEqual(t.w.match('5.6.7.9'), { list: 'feed', entry: '5.6.7.0/24' }, 'old list still in use');
    assert.equal(t.w.match('8.8.8.8'), null, 'nothing of the bad version is used');
    writeFileSync(t.file('feed.txt'), '8.8.8.8\n');
    await until(() => t.w.match('8.8.8.8') !== null, 'the fixed file');
    assert.equal(t.w.match('5.6.7.9'), null);
  } finally {
    t.done();
  }
});

test('a deleted file keeps its list until it comes back', async () => {
  const t = await setup({ 'a.txt': '1.2.3.4\n', 'b.txt': '2001:db8::1\n' });
  try {
    rmSync(t.file('a.txt'));
    await until(() => t.problems.some((p) => p.kind === 'unreadable'), 'the unreadable report');
    const p = t.problems.find((x) => x.kind === 'unreadable')!;
    assert.equal(p.list, 'a');
    assert.equal(p.inUse, 'previous');
    assert.match(p.message, /cannot read .*a\.txt \(ENOENT\); keeping the list loaded at .* \(1 entry\)/);
    assert.deepEqual(t.w.match('1.2.3.4'), { list: 'a', entry: '1.2.3.4' });
    assert.deepEqual(t.w.match('2001:db8::1'), { list: 'b', entry: '2001:db8::1' });
    writeFileSync(t.file('a.txt'), '4.4.4.4\n');
    await until(() => t.w.match('4.4.4.4') !== null, 'the recreated file');
  } finally {
    t.done();
  }
});

test('first load: bad lines leave the valid ones in use; a missing file is reported and picked up later', async () => {
  const bad = `${fixtures}bad-lines.txt`;
  const t = await setup({ 'missing.txt': null }, {});
  try {
    assert.equal(t.problems[0]?.kind, 'unreadable');
    assert.equal(t.problems[0]?.inUse, 'none');
    assert.match(t.problems[0]!.message, /nothing is loaded for this list yet/);
    assert.deepEqual(t.w.status()[0], { list: 'missing', file: t.file('missing.txt'), entries: 0, loadedAt: null });
    writeFileSync(t.file('missing.txt'), '7.7.7.7\n');
    await until(() => t.w.match('7.7.7.7') !== null, 'the file created after start');
  } finally {
    t.done();
  }
  const problems: IpListProblem[] = [];
  const w = await IpListWatcher.open({ files: [{ path: bad, name: 'mistakes' }], watch: 'off', onProblem: (p) => problems.push(p) });
  try {
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.inUse, 'valid-lines');
    assert.deepEqual(problems[0]!.errors.map((e) => e.line), [3, 4, 5, 7]);
    assert.match(problems[0]!.message, /has 4 bad lines .*; using its 2 valid entries$/);
    assert.deepEqual(w.match('198.51.100.20'), { list: 'mistakes', entry: '198.51.100.0/24' });
  } finally {
    w.close();
  }
});

test('a file over the size limit is refused and the previous list stays', async () => {
  const t = await setup({ 'big.txt': '1.2.3.4\n' }, { maxFileBytes: 64 });
  try {
    writeFileSync(t.file('big.txt'), '2.2.2.2\n'.repeat(20));
    await until(() => t.problems.some((p) => p.kind === 'too-large'), 'the too-large report');
    assert.match(t.problems.find((p) => p.kind === 'too-large')!.message, /is 160 bytes, more than the 64 allowed; keeping/);
    assert.notEqual(t.w.match('1.2.3.4'), null);
    assert.equal(t.w.match('2.2.2.2'), null);
  } finally {
    t.done();
  }
});

test('after close() changes are no longer loaded; two lists with one name are refused', async () => {
  const t = await setup({ 'list.txt': '1.2.3.4\n' }, { pollIntervalMs: 30 });
  t.w.close();
  writeFileSync(t.file('list.txt'), '5.5.5.5\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(t.w.match('5.5.5.5'), null);
  assert.notEqual(t.w.match('1.2.3.4'), null, 'the last list stays readable');
  t.done();
  await assert.rejects(IpListWatcher.open({ files: ['/x/tor.txt', '/y/tor.list'] }), (e: unknown) => e instanceof IpListConfigError && /two IP lists are named "tor"/.test(e.message));
  await assert.rejects(IpListWatcher.open({ files: [], pollIntervalMs: 0 }), /pollIntervalMs must be a number ≥ 10, not 0/);
});
