// With pooling one backend pid serves many client sessions: the index answers which session held
// it at a given time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionIndex, SETTLE_MARGIN_MS } from '../../../../src/gateway/session-index.js';

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

test('an ended hold is forgotten once the pgAudit ingest has read past its end (with a margin); a held one never', () => {
  const idx = new SessionIndex();
  const t = Date.now();
  const [a, b, c] = [session('a'), session('b'), session('c')];
  idx.lent(a, 100, t - 30_000);
  idx.returned(a, 100, t - 25_000);
  idx.lent(b, 100, t - 20_000);
  idx.returned(b, 100, t - 15_000);
  idx.lent(c, 100, t - 10_000);
  assert.equal(idx.kept, 3, 'nothing is forgotten before the ingest says how far it read');
  idx.settled(t - 25_000 + SETTLE_MARGIN_MS - 1);
  assert.equal(idx.kept, 3, 'within the margin: kept');
  idx.settled(t - 25_000 + SETTLE_MARGIN_MS);
  assert.equal(idx.kept, 2);
  assert.equal(idx.findAt('s', 100, t - 17_000)?.connId, 'b');
  idx.settled(t - 5_000); // a mark that goes back changes nothing
  idx.settled(Number.POSITIVE_INFINITY);
  assert.equal(idx.kept, 1, 'the backend held now stays');
  assert.equal(idx.find('s', 100)?.connId, 'c');
  idx.returned(c, 100, t);
  assert.equal(idx.kept, 0);
  assert.equal(idx.find('s', 100), null);
});

test('transaction pooling: with the ingest reading every 500 ms, the index keeps seconds of holds, not minutes', () => {
  const idx = new SessionIndex();
  const start = Date.now() - 60_000;
  const clients = Array.from({ length: 16 }, (_, i) => session(`c${i}`));
  let at = start;
  let nextSettle = start + 500;
  let most = 0;
  // 60 s at 10,000 transactions a second, 16 clients over 8 backends.
  for (let n = 0; n < 600_000; n++) {
    at = start + n / 10;
    const client = clients[n % 16]!;
    const pid = 1 + (n % 8);
    idx.lent(client, pid, at);
    idx.returned(client, pid, at + 0.05);
    if (at >= nextSettle) {
      idx.settled(at - 1_000); // what the last scan read to (a second's hold)
      nextSettle += 500;
      most = Math.max(most, idx.kept);
    }
  }
  const perSecond = 10_000;
  assert.ok(most <= (SETTLE_MARGIN_MS / 1000 + 2) * perSecond, `kept at most ${most} holds`);
  assert.ok(most >= (SETTLE_MARGIN_MS / 1000) * perSecond, `kept at most ${most} holds: every line in the margin still finds its session`);
  // A line logged in the margin is joined to the client that held its backend then.
  const t = at - 1_000 - SETTLE_MARGIN_MS + 10;
  const n = Math.ceil((t - start) * 10);
  assert.equal(idx.findAt('s', 1 + (n % 8), start + n / 10 + 0.01)?.connId, `c${n % 16}`);
});
