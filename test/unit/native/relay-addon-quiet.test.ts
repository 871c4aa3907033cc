// The native relay addon's quiet statements (native/relay/src/quiet.rs) against its contract
// (RelayOptions.quietSet): a keyed simple Query comes after its key record; once the key is in
// the set, such a Query and its answer are relayed unobserved; what the client sends meanwhile is
// observed after that answer, and an answer that fails is observed from its error on, the Query
// first. With the fake server of harness.ts. Skipped when the addon is not built.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AddonEvent, RelayOptions } from '../../../src/gateway/native/addon.js';
import { eventSession, sessionRecordParts, shapeRecordParts, statementExecuted } from '../../../src/audit/statement-json.js';
import { canonicalTextOf } from '../../../src/audit/store/canonical-json.js';
import type { StatementEvent } from '../../../src/audit/tap/index.js';
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
  if (buf[0] === 0 && buf.readInt32BE(1) === 8) buf = buf.subarray(9); // after the unnamed record
  assert.equal(buf[0], 0);
  assert.equal(buf.readInt32BE(1), 24);
  assert.equal(buf.readInt32BE(5), 0x6b);
  return Buffer.from(buf.subarray(9, 25));
}

/** A client relayed with observation and a quiet set of its own, both gone after the test. */
async function quietSession(t: { after(f: () => void): void }, o: Partial<RelayOptions> = {}) {
  const set = addon.quietSet();
  t.after(() => addon.dropQuietSet(set));
  const { client, id } = await relayed({ observe: true, quietSet: set, ...o });
  t.after(() => client.destroy());
  return { set, client, id };
}

describe('native relay addon: quiet statements', { skip }, () => {
  before(() => setUpAddon());
  after(() => tearDownAddon());

  it('a known shape and its answer go unobserved; a Query sent meanwhile is observed after that answer', async (t) => {
    const { set, client, id } = await quietSession(t);
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
    const { set, client, id } = await quietSession(t);
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

  it('a summarized shape comes as a summary event (text, times, tag), before what was sent after it', async (t) => {
    const { set, client, id } = await quietSession(t);
    client.write(query('rows 100'));
    const first = await transcript(id, 1);
    addon.quiet(set, keyOf(first.client[0]!), 9);
    // Pipelined: the summarized one, then one of another shape; then a long answer (its tag in a
    // later chunk than its rows).
    client.write(Buffer.concat([query('rows 250'), query('other 1')]));
    const summary = await next(id);
    assert.equal(summary.type, 'summary');
    const s = summary as Extract<AddonEvent, { type: 'summary' }>;
    assert.deepEqual([s.shape, s.text.toString(), s.tag], [9, 'rows 250', 'SELECT 250']);
    assert.ok(s.end >= s.at && s.end - s.at < 1000, `times ${s.at} ${s.end} (the addon's clock)`);
    const { lines } = await transcript(id, 1);
    assert.deepEqual(lines, ['c:unnamed', 'c:Q', 's:C', 's:Z'], 'the second Query and its answer, after the summary');
    client.write(query('rows 4096'));
    const long = (await next(id)) as Extract<AddonEvent, { type: 'summary' }>;
    assert.deepEqual([long.type, long.text.toString(), long.tag], ['summary', 'rows 4096', 'SELECT 4096']);
  });

  it('a summarized Query that fails is observed with its error; one left unanswered at the end is observed', async (t) => {
    const { set, client, id } = await quietSession(t);
    client.write(query('error 555'));
    addon.quiet(set, keyOf((await transcript(id, 1)).client[0]!), 1);
    client.write(query('error 777'));
    const failed = await transcript(id, 1);
    assert.deepEqual(failed.lines, ['c:Q', 's:E', 's:Z'], 'no summary: the statement and its failure');
    // The server answers half a row and no more: the client leaves before the answer ends.
    client.write(query('half 100'));
    const first = await next(id);
    assert.equal(first.type, 'observe', 'the first of its shape is observed');
    addon.quiet(set, keyOf((first as Observe).client!), 2);
    const other = await relayed({ observe: true, quietSet: set });
    other.client.write(query('half 200'));
    await new Promise((r) => setTimeout(r, 100));
    other.client.destroy();
    const events: AddonEvent[] = [];
    for (let e = await next(other.id); e.type !== 'closed'; e = await next(other.id)) events.push(e);
    const sent = events.flatMap((e) => (e.type === 'observe' && e.client ? [e.client] : []));
    const queries = messages(Buffer.concat(sent))
      .list.filter(([type]) => type === 'Q')
      .map(([, m]) => m.subarray(5, m.length - 1).toString());
    assert.deepEqual(queries, ['half 200'], 'observed at the end, so it is recorded unanswered');
    assert.ok(events.every((e) => e.type === 'observe'));
  });

  it('strict durability (hold): a summarized shape is observed, with its key', async (t) => {
    const { set, client, id } = await quietSession(t, { hold: true });
    /** Observe events until a ReadyForQuery, each held chunk released. */
    const round = async (text: string) => {
      client.write(query(text));
      const got: Observe[] = [];
      for (;;) {
        const e = await next(id);
        if (e.type !== 'observe') continue;
        got.push(e as Observe);
        if (e.hold) addon.release(id);
        if (e.server && readObserve(e.server).types.includes('Z')) return got;
      }
    };
    const first = await round('rows 100');
    addon.quiet(set, keyOf(first[0]!.client!), 4);
    const second = await round('rows 200');
    assert.deepEqual(readObserve(second[0]!.client!).types.slice(0, 2), ['key', 'Q']);
  });

  it('records of sessions of two audit logs come in runs of each log, named by its sink', async (t) => {
    const info = { class: 'READ', classes: ['READ'], commandTag: 'SELECT', objects: [] } as const;
    const sessions = [];
    // (Sink numbers apart from connection ids: this harness queues both by number.)
    for (const [sink, user] of [
      [1001, 'alice'],
      [1002, 'bob'],
    ] as const) {
      const session = eventSession(
        { connId: `c-${sink}`, clientAddress: '127.0.0.1', clientPort: sink, listener: 'public' },
        { server: 's', user, database: 'db', applicationName: 'a' },
      );
      sessions.push({ sink, user, ...(await quietSession(t, { record: sessionRecordParts(session, 8192), recordSink: sink })) });
    }
    for (const s of sessions) {
      s.client.write(query('rows 100 FROM t WHERE x = 1'));
      addon.quiet(s.set, keyOf((await transcript(s.id, 1)).client[0]!), 1, shapeRecordParts(info, 0, 0));
    }
    // Statements of both sessions at once: each log gets its own records, and only its own.
    for (const s of sessions) s.client.write(query('rows 150 FROM t WHERE x = 1'));
    for (const s of sessions) {
      const e = (await next(s.sink)) as Extract<AddonEvent, { type: 'records' }>;
      assert.equal(e.type, 'records');
      assert.equal(e.count, 1);
      assert.equal((JSON.parse(e.data.subarray(4).toString('utf8')) as { user: string }).user, s.user);
    }
  });

  it('with record parts, a summarized statement comes as its audit record: the text statementExecuted makes', async (t) => {
    const session = eventSession(
      { connId: 'c-1', clientAddress: '127.0.0.1', clientPort: 5, listener: 'public' },
      { server: 's-1', user: 'ünï "q"', database: 'db\\1', applicationName: 'app\n\u0001é😀' },
    );
    const info = { class: 'READ', classes: ['READ'], commandTag: 'SELECT', objects: [{ kind: 'relation', name: 't "x" é' }] } as const;
    const { set, client, id } = await quietSession(t, { record: sessionRecordParts(session, 8192), recordSink: 7 });
    // Quoted names, tabs, newlines, a control character, non-ASCII: escaped as JSON.stringify does.
    const suffix = ' FROM "ünï""cödé"\t\n\u0001 WHERE x = 1';
    client.write(query(`rows 100${suffix}`));
    const first = await transcript(id, 1);
    addon.quiet(set, keyOf(first.client[0]!), 1, shapeRecordParts(info, 0, 0));
    client.write(query(`rows 150${suffix}`));
    // Records come in runs, of any connections of one audit log, named by its sink: here one run of one.
    const e = await next(7);
    assert.equal(e.type, 'records');
    const run = e as Extract<AddonEvent, { type: 'records' }>;
    assert.equal(run.count, 1);
    assert.equal(run.data.readUInt32LE(0), run.data.length - 4);
    const text = run.data.subarray(4).toString('utf8');
    const parsed = JSON.parse(text) as { time: string; durationMs: number };
    const expected = statementExecuted(parsed.time, session, {
      ...info,
      text: `rows 150${suffix}`,
      outcome: 'success',
      protocol: 'simple',
      durationMs: parsed.durationMs,
      rows: 150,
    } as StatementEvent);
    assert.equal(text, canonicalTextOf(expected));
    assert.ok(Math.abs(Date.parse(parsed.time) - Date.now()) < 5_000, parsed.time);
    // Parts that do not decode are refused.
    assert.throws(() => addon.quiet(set, keyOf(first.client[0]!), 2, Buffer.from([9, 0, 0, 0])));
  });
});
