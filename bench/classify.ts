// Statement audit micro-benchmark: µs per classify (exact text cached, literal-only variants of a
// cached shape, new shapes, and with shape sharing off), and the taps' throughput on pgbench-like
// streams (TPC-B script over the simple protocol; select-only over prepared statements).
// Run: npx tsc -p . && node dist/bench/classify.js   (about 10 s; not a timed test, gates nothing)

import { Classifier } from '../src/audit/classify/index.js';
import { SessionAudit } from '../src/audit/tap/index.js';
import { MessageWriter } from '../src/pgwire/message-writer.js';
import { readyForQuery } from '../src/pgwire/backend.js';

let seed = 0x2545f491;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

function timeUs(count: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(count, 2000); i++) fn(i); // warm-up
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / 1000 / count;
}

const select = (aid: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
const tpcb = (aid: number, delta: number) => `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`;

function classifyBench(): void {
  const rows: [string, number][] = [];
  const cached = new Classifier();
  rows.push(['same text (cached)', timeUs(500_000, () => cached.classify(select(12345)))]);
  const shaped = new Classifier();
  rows.push(['pgbench -S text, random aid (shape cached)', timeUs(500_000, () => shaped.classify(select(rand(100_000))))]);
  rows.push(['pgbench UPDATE, random values (shape cached)', timeUs(300_000, () => shaped.classify(tpcb(rand(100_000), rand(10_000) - 5000)))]);
  const redacting = new Classifier({ redactColumns: ['aid'], redactPatterns: [/^\d{16}$/] });
  rows.push(['same, with column and pattern redaction', timeUs(300_000, () => redacting.classify(tpcb(rand(100_000), rand(10_000))))]);
  const prepared = new Classifier();
  rows.push(['prepared text with $n (cached, no literals)', timeUs(500_000, () => prepared.classify('SELECT abalance FROM pgbench_accounts WHERE aid = $1'))]);
  let n = 0;
  const fresh = new Classifier();
  rows.push([
    'new shape each time (parse + scan + analysis)',
    timeUs(5_000, () => fresh.classify(`SELECT c${n}, count(*) FROM s.t${n++} WHERE k = 'v' GROUP BY 1`)),
  ]);
  const exact = new Classifier({ shapes: false });
  rows.push(['random aid, shape sharing off (parse each)', timeUs(20_000, () => exact.classify(select(rand(1_000_000_000))))]);
  const multi = new Classifier();
  const script = (i: number) =>
    `BEGIN; ${tpcb(i, 5)} SELECT abalance FROM pgbench_accounts WHERE aid = ${i}; UPDATE pgbench_tellers SET tbalance = tbalance + 5 WHERE tid = 3; ` +
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, ${i}, 5, CURRENT_TIMESTAMP); END;`;
  rows.push(['7-statement TPC-B string (shape cached)', timeUs(100_000, () => multi.classify(script(rand(100_000))))]);
  console.log('classify                                          µs/call');
  for (const [name, us] of rows) console.log(`  ${name.padEnd(48)}${us.toFixed(2).padStart(8)}`);
}

// Streams

const msg = () => new MessageWriter();
const query = (text: string) => msg().cstring(text).message('Q');
const complete = (tag: string) => msg().cstring(tag).message('C');
const rowDescription = msg().int16(1).cstring('abalance').int32(0).int16(0).int32(23).int16(4).int32(-1).int16(0).message('T');
const dataRow = (v: string) => msg().int16(1).int32(v.length).bytes(Buffer.from(v)).message('D');
const ready = readyForQuery('I');
const inTxn = readyForQuery('T');

/** pgbench's TPC-B-like script, one statement per Query (pgbench -M simple). */
function tpcbTransaction(): { client: Buffer[]; server: Buffer[] } {
  const aid = rand(100_000) + 1;
  const tid = rand(10) + 1;
  const delta = rand(10_000) - 5000;
  const statements: [string, Buffer][] = [
    ['BEGIN;', Buffer.concat([complete('BEGIN'), inTxn])],
    [`UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`, Buffer.concat([complete('UPDATE 1'), inTxn])],
    [`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`, Buffer.concat([rowDescription, dataRow('1234'), complete('SELECT 1'), inTxn])],
    [`UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid};`, Buffer.concat([complete('UPDATE 1'), inTxn])],
    [`UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = 1;`, Buffer.concat([complete('UPDATE 1'), inTxn])],
    [
      `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, 1, ${aid}, ${delta}, CURRENT_TIMESTAMP);`,
      Buffer.concat([complete('INSERT 0 1'), inTxn]),
    ],
    ['END;', Buffer.concat([complete('COMMIT'), ready])],
  ];
  return { client: statements.map(([s]) => query(s)), server: statements.map(([, r]) => r) };
}

/** pgbench -S -M prepared: Bind/Execute/Sync of a prepared select, one DataRow back. */
function selectOnlyPrepared(): { client: Buffer[]; server: Buffer[] } {
  const aid = String(rand(100_000) + 1);
  const client = Buffer.concat([
    msg().cstring('').cstring('P0_1').int16(0).int16(1).int32(aid.length).bytes(Buffer.from(aid)).int16(0).message('B'),
    msg().cstring('').int32(0).message('E'),
    msg().message('S'),
  ]);
  const server = Buffer.concat([msg().message('2'), dataRow('1234'), complete('SELECT 1'), ready]);
  return { client: [client], server: [server] };
}

function tapBench(name: string, make: () => { client: Buffer[]; server: Buffer[] }, setup: [Buffer, Buffer][] = []): void {
  const exchanges: [Buffer, Buffer][] = [];
  let bytes = 0;
  let statements = 0;
  for (let i = 0; i < 20_000; i++) {
    const t = make();
    t.client.forEach((c, k) => {
      exchanges.push([c, t.server[k]!]);
      bytes += c.length + t.server[k]!.length;
    });
  }
  const classifier = new Classifier();
  const once = () => {
    const audit = new SessionAudit({ classifier, onStatement: () => statements++ });
    for (const [c, s] of setup) {
      audit.fromClient(c);
      audit.fromServer(s);
    }
    for (const [c, s] of exchanges) {
      audit.fromClient(c);
      audit.fromServer(s);
    }
    audit.end();
  };
  once();
  statements = 0;
  const rounds = 5;
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) once();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const mb = (bytes * rounds) / 1e6;
  console.log(
    `  ${name.padEnd(44)}${(mb / seconds).toFixed(1).padStart(8)} MB/s${(statements / seconds / 1000).toFixed(0).padStart(8)} k statements/s${((seconds * 1e6) / statements).toFixed(2).padStart(8)} µs/statement`,
  );
}

classifyBench();
console.log('\ntaps + joiner (both directions, one message per read)');
tapBench('pgbench TPC-B, simple protocol', tpcbTransaction);
const prepare = Buffer.concat([
  msg().cstring('P0_1').cstring('SELECT abalance FROM pgbench_accounts WHERE aid = $1').int16(0).message('P'),
  msg().message('S'),
]);
tapBench('pgbench -S, prepared (Bind/Execute/Sync)', selectOnlyPrepared, [[prepare, Buffer.concat([msg().message('1'), ready])]]);
