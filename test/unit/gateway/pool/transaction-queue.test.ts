// The response queue without sockets: which server messages reach the client, when the
// gateway's own answers are due, and what is undone after an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entry, Mode, Reply, ResponseQueue, Tag, type Entry } from '../../../../src/gateway/pool/response-queue.js';

const code = (c: string) => c.charCodeAt(0);

function queue() {
  const emitted: string[] = [];
  const undone: Entry[] = [];
  const q = new ResponseQueue({
    emit: (b) => emitted.push(b.toString('latin1')),
    undone: (e) => undone.push(e),
  });
  /** Feeds server messages by type letter; returns the letters forwarded, with emits in place. */
  const server = (types: string): string => {
    let out = '';
    for (const t of types) {
      const before = emitted.length;
      if (q.route(code(t))) out += t;
      q.complete(code(t));
      for (const e of emitted.slice(before)) out += `<${e}>`;
    }
    return out;
  };
  return { q, emitted, undone, server };
}

test('extended pipeline: answers forwarded in order, a synthetic ParseComplete placed after the answers before it', () => {
  const { q, server } = queue();
  q.push(entry(Reply.One, Mode.Forward)); // Bind
  q.push(entry(Reply.Execute, Mode.Forward));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('1'))); // Parse the connection had
  q.push(entry(Reply.One, Mode.Forward)); // Bind
  q.push(entry(Reply.Execute, Mode.Forward));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('2DDC2DCZ'), '2DDC<1>2DCZ');
  assert.ok(q.empty);
});

test('a synthetic answer with nothing before it is emitted at once', () => {
  const { q, emitted } = queue();
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('3')));
  assert.deepEqual(emitted, ['3']);
  assert.ok(q.empty);
});

test('an inserted Parse is swallowed, but its error reaches the client', () => {
  const { q, server, undone } = queue();
  q.push(entry(Reply.One, Mode.Swallow, null, Tag.InsertedParse, '', 'pgw_x'));
  q.push(entry(Reply.One, Mode.Forward));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('12Z'), '2Z');
  q.push(entry(Reply.One, Mode.Swallow, null, Tag.InsertedParse, '', 'pgw_y'));
  q.push(entry(Reply.One, Mode.Forward));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('EZ'), 'EZ');
  assert.deepEqual(
    undone.map((e) => [e.tag, e.server]),
    [
      [Tag.InsertedParse, 'pgw_y'],
      [Tag.None, ''],
    ],
  );
});

test('an error drops the entries up to the Sync: their synthetic answers are never sent', () => {
  const { q, server, undone } = queue();
  q.push(entry(Reply.One, Mode.Forward)); // Bind fails
  q.push(entry(Reply.Execute, Mode.Forward));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('1'), Tag.ClientParse, 's1'));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('3'), Tag.ClientClose, 's2'));
  q.push(entry(Reply.Sync, Mode.Forward));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('1'))); // after the Sync: still due
  assert.equal(server('EZ'), 'EZ<1>');
  assert.deepEqual(
    undone.map((e) => e.name),
    ['', '', 's1', 's2'],
  );
  assert.ok(q.empty);
});

test('an error with no Sync yet: what the client sends before its Sync is skipped, the Sync answered', () => {
  const { q, server, undone, emitted } = queue();
  q.push(entry(Reply.One, Mode.Forward));
  q.push(entry(Reply.Describe, Mode.Forward));
  assert.equal(server('E'), 'E');
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('1'), Tag.ClientParse, 'late'));
  assert.deepEqual(emitted, []);
  assert.equal(undone.at(-1)?.name, 'late');
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('Z'), 'Z');
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('1')));
  assert.deepEqual(emitted, ['1']);
});

test('Describe of a statement: ParameterDescription then RowDescription or NoData', () => {
  const { q, server } = queue();
  q.push(entry(Reply.Describe, Mode.Forward));
  q.push(entry(Reply.Describe, Mode.Forward));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('3')));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('tTtnZ'), 'tTtn<3>Z');
});

test('a simple Query with several statements and an error inside completes at ReadyForQuery only', () => {
  const { q, server } = queue();
  q.push(entry(Reply.Query, Mode.Forward));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('1')));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('TDCTDCEZ'), 'TDCTDCEZ<1>');
  assert.equal(server('Z'), 'Z');
  assert.ok(q.empty);
});

test('notices, parameter status and notifications never complete an entry', () => {
  const { q, server } = queue();
  q.push(entry(Reply.One, Mode.Swallow));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('NS1AZ'), 'NSAZ');
});

test('COPY FROM STDIN by extended query: the Sync sent before the data is ignored, as the server does', () => {
  const { q, server } = queue();
  q.push(entry(Reply.One, Mode.Forward)); // Parse
  q.push(entry(Reply.One, Mode.Forward)); // Bind
  q.push(entry(Reply.Execute, Mode.Forward));
  q.push(entry(Reply.Sync, Mode.Forward)); // libpq's, during copy-in
  assert.equal(server('12G'), '12G');
  q.push(entry(Reply.CopyEnd, Mode.Forward));
  q.push(entry(Reply.Sync, Mode.Forward)); // after CopyDone
  assert.equal(server('CZ'), 'CZ');
  assert.ok(q.empty);
});

test('COPY FROM STDIN by simple query, data pipelined before CopyInResponse', () => {
  const { q, server } = queue();
  q.push(entry(Reply.Query, Mode.Forward));
  q.push(entry(Reply.CopyEnd, Mode.Forward));
  assert.equal(server('GCZ'), 'GCZ');
  assert.ok(q.empty);
});

test('COPY TO STDOUT: data and CopyDone are part of the Execute', () => {
  const { q, server } = queue();
  q.push(entry(Reply.Execute, Mode.Forward));
  q.push(entry(Reply.One, Mode.Synthetic, Buffer.from('3')));
  q.push(entry(Reply.Sync, Mode.Forward));
  assert.equal(server('HddcCZ'), 'HddcC<3>Z');
});
