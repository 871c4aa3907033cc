// The native relay addon's quiet statements (native/relay/src/quiet.rs) against its contract
// (RelayOptions.quietSet): a keyed simple Query comes after its key record; once the key is in
// the set, such a Query and its answer are relayed unobserved; what the client sends meanwhile is
// observed after that answer, and an answer that fails is observed from its error on, the Query
// first. With the fake server of harness.ts. Skipped when the addon is not built.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AddonEvent } from '../../../src/gateway/native/addon.js';
import { addon, messages, next, query, readObserve, relayed, setUpAddon, skip, tearDownAddon } from './harness.js';

type Observe = Extract<AddonEvent, { type: 'observe' }>;

/** Observe events until the server side has sent `readys` ReadyForQuery: the transcript in
 * event order ('c:' client, 's:' server, by message type; runs as 'D*'). */
async function transcript(id: number, readys: number): Promise<{ lines: string[]; client: Buffer[] }> {
  const lines: string[] = [];
  const client: Buffer[] = [];
  let seen = 0;
  while (seen < readys) {
    const e = await next(id);
    if (e.type !== 'observe') continue;
    const o = e as Observe;
    if (o.client) {
      client.push(o.client);
      lines.push(...readObserve(o.client).types.map((t) => `c:${t}`));
    }
    if (o.server) {
      const r = readObserve(o.server);
      lines.push(...r.types.map((t) => `s:${t}`), ...r.runs.map((x) => `s:${x.code}*`));
      seen += r.types.filter((t) => t === 'Z').length;
    }
  }
  return { lines, client };
}

/** The key of the keyed Query the client buffer holds (after its key record). */
function keyOf(buf: Buffer): Buffer {
  assert.equal(buf[0], 0);
  assert.equal(buf.readInt32BE(1), 24);
  assert.equal(buf.readInt32BE(5), 0x6b);
  return Buffer.from(buf.subarray(9, 25));
}

describe('native relay addon: quiet statements', { skip }, () => {
  before(() => setUpAddon());
  after(() => tearDownAddon());

  it('a known shape and its answer go unobserved; a Query sent meanwhile is observed after that answer', async (t) => {
    const set = addon.quietSet();
    t.after(() => addon.dropQuietSet(set));
    const { client, id } = await relayed({ observe: true, quietSet: set });
    t.after(() => client.destroy());
    client.write(query('rows 100'));
    const first = await transcript(id, 1);
    assert.deepEqual(first.lines.slice(0, 2), ['c:key', 'c:Q'], 'keyed: all before it was answered');
    assert.deepEqual(
      first.lines.slice(2).filter((l) => l !== 's:D*'),
      ['s:T', 's:C', 's:Z'],
    );
    addon.quiet(set, keyOf(first.client[0]!));
    // Pipelined: the quiet one first, then another the server answers after it.
    client.write(Buffer.concat([query('rows 250'), query('other 1')]));
    const { lines } = await transcript(id, 1);
    // (The unnamed record: the quiet Query replaced the unnamed statement and portal unobserved.)
    assert.deepEqual(lines, ['c:unnamed', 'c:Q', 's:C', 's:Z'], 'only the second Query and its answer, in that order');
    // Everything answered: keyed again, and quiet again.
    client.write(Buffer.concat([query('rows 999'), query('other 2')]));
    const last = await transcript(id, 1);
    assert.deepEqual(last.lines, ['c:unnamed', 'c:Q', 's:C', 's:Z']);
  });

  it('a quiet Query whose answer fails is observed with its error, before what was sent after it', async (t) => {
    const set = addon.quietSet();
    t.after(() => addon.dropQuietSet(set));
    const { client, id } = await relayed({ observe: true, quietSet: set });
    t.after(() => client.destroy());
    client.write(query('error 555'));
    const first = await transcript(id, 1);
    assert.deepEqual(first.lines, ['c:key', 'c:Q', 's:E', 's:Z']);
    addon.quiet(set, keyOf(first.client[0]!));
    client.write(Buffer.concat([query('error 777'), query('rows 1')]));
    const { lines, client: sent } = await transcript(id, 2);
    assert.deepEqual(lines.slice(0, 3), ['c:Q', 'c:unnamed', 'c:Q'], 'the failed Query, then the next one');
    const queries = messages(Buffer.concat(sent))
      .list.filter(([type]) => type === 'Q')
      .map(([, m]) => m.subarray(5, m.length - 1).toString());
    assert.deepEqual(queries, ['error 777', 'rows 1']);
    assert.deepEqual(
      lines.slice(3).filter((l) => l !== 's:D*'),
      ['s:E', 's:Z', 's:T', 's:C', 's:Z'],
    );
  });
});
