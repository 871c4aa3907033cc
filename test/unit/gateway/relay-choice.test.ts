// Which relay a gateway process runs (`up --relay`, PGWARDEN_RELAY): native when the addon loads,
// else the JavaScript relay with one warning; native asked for and not loadable fails the start.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableParallelism } from 'node:os';
import { chooseRelay, relayThreads } from '../../../src/gateway/native/host.js';

// No addon in this process (memoized on first use, so set before any call).
process.env.PGWARDEN_RELAY_ADDON = '/nonexistent/pgwarden-relay.node';

function logger() {
  const lines: string[] = [];
  return { lines, warn: (_obj: object, msg: string) => lines.push(msg) };
}

test('no addon: the JavaScript relay, with one warning naming the reason', () => {
  delete process.env.PGWARDEN_RELAY;
  const log = logger();
  const r = chooseRelay(undefined, 1, log);
  assert.equal(r.mode, 'js');
  assert.equal(r.host, null);
  assert.equal(log.lines.length, 1);
  assert.match(log.lines[0]!, /native relay not available.*\/nonexistent\/pgwarden-relay\.node is not built/);
});

test('--relay native without the addon fails with a clear message; --relay js never loads it', () => {
  delete process.env.PGWARDEN_RELAY;
  assert.throws(() => chooseRelay('native', 1, logger()), /--relay native: the native relay addon is not available \(\/nonexistent/);
  const log = logger();
  assert.equal(chooseRelay('js', 1, log).mode, 'js');
  assert.equal(log.lines.length, 0);
});

test('PGWARDEN_RELAY chooses where no option does', () => {
  process.env.PGWARDEN_RELAY = 'js';
  const log = logger();
  assert.equal(chooseRelay(undefined, 1, log).mode, 'js');
  assert.equal(log.lines.length, 0);
  process.env.PGWARDEN_RELAY = 'native';
  assert.throws(() => chooseRelay(undefined, 1, logger()), /not available/);
  process.env.PGWARDEN_RELAY = 'rust';
  assert.throws(() => chooseRelay(undefined, 1, logger()), /PGWARDEN_RELAY must be js or native/);
  delete process.env.PGWARDEN_RELAY;
});

test('relay threads: --relay-threads wins; else the cores shared out among the processes, at least one', () => {
  const cores = availableParallelism();
  assert.equal(relayThreads(1, 3), 3);
  assert.equal(relayThreads(4, 2), 2);
  assert.equal(relayThreads(1), cores);
  assert.equal(relayThreads(2), Math.max(1, Math.floor(cores / 2)));
  assert.equal(relayThreads(cores * 4), 1);
});
