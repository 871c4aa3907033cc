// With pooling one backend pid serves many client sessions: the index answers which session held
// it at a given time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionIndex } from '../../../../src/gateway/session-index.js';

const session = (connId: string) => ({ server: 's', backendPid: 0, connId, applicationName: undefined });

test('which session held pid P at time T', () => {
  const idx = new SessionIndex();
  const a = session('a');
  const b = session('b');
  idx.lent(a, 100, 1_000);
  idx.returned(a, 100, 2_000);
  idx.lent(b, 100, 3_000);
  assert.equal(idx.findAt('s', 100, 1_500)?.connId, 'a');
  assert.equal(idx.findAt('s', 100, 2_500)?.connId, 'a'); // the last to take it before then
  assert.equal(idx.findAt('s', 100, 3_500)?.connId, 'b');
  assert.equal(idx.findAt('s', 100, 500)?.connId, 'b'); // before any hold: the latest
  assert.equal(idx.find('s', 100)?.connId, 'b');
  assert.equal(idx.find('s', 101), null);
  assert.equal(idx.find('t', 100), null);
});

test('ended holds are forgotten two minutes after they ended', () => {
  const idx = new SessionIndex();
  const a = { ...session('a'), backendPid: 7 };
  idx.opened(a);
  idx.closed(a);
  assert.equal(idx.find('s', 7)?.connId, 'a');
  const b = session('b');
  idx.lent(b, 8, Date.now());
  idx.returned(b, 8, Date.now() + 121_000);
  assert.equal(idx.find('s', 7), null);
  assert.equal(idx.find('s', 8)?.connId, 'b'); // ended just now: kept
});
