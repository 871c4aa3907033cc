// Fuzzing the taps: however a valid conversation is cut into chunks the events are the same, and
// no input, however malformed, makes them throw.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Classifier } from '../../../../src/audit/classify/index.js';
import { SessionAudit } from '../../../../src/audit/tap/index.js';
import { run, summary, type Step } from './harness.js';
import * as w from './wire.js';

const SCENARIOS: readonly (readonly Step[])[] = [
  [
    ['client', w.query('BEGIN; INSERT INTO t VALUES (1); SELECT * FROM t; COMMIT')],
    [
      'server',
      w.cat(
        w.commandComplete('BEGIN'),
        w.commandComplete('INSERT 0 1'),
        w.rowDescription(['a']),
        w.dataRow(['1']),
        w.commandComplete('SELECT 1'),
        w.commandComplete('COMMIT'),
        w.ready(),
      ),
    ],
    ['client', w.query("ALTER ROLE bob PASSWORD 'x'; SELECT 1/0; SELECT 2")],
    ['server', w.cat(w.commandComplete('ALTER ROLE'), w.error('22012', 'division by zero'), w.ready())],
  ],
  [
    [
      'client',
      w.cat(
        w.parse('s', 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2'),
        w.bind('', 's', ['5', '77']),
        w.execute(),
        w.parse('', 'SELECT abalance FROM pgbench_accounts WHERE aid = $1'),
        w.bind('', '', ['77']),
        w.describe('P'),
        w.execute(),
        w.parse('', 'SELECT * FROM missing'),
        w.bind('', ''),
        w.execute(),
        w.sync(),
      ),
    ],
    [
      'server',
      w.cat(
        w.parseComplete(),
        w.bindComplete(),
        w.commandComplete('UPDATE 1'),
        w.parseComplete(),
        w.bindComplete(),
        w.rowDescription(['abalance']),
        w.dataRow(['5']),
        w.commandComplete('SELECT 1'),
        w.error('42P01', 'missing'),
        w.ready(),
      ),
    ],
    ['client', w.cat(w.bind('', 's', ['1', '2']), w.execute(), w.sync(), w.functionCall(1234, ['a']))],
    ['server', w.cat(w.bindComplete(), w.commandComplete('UPDATE 1'), w.ready(), w.functionResult('b'), w.ready())],
  ],
  [
    ['client', w.query('COPY t FROM STDIN')],
    ['server', w.copyInResponse()],
    ['client', w.cat(w.copyData('x'.repeat(70000)), w.copyData('1\n'), w.copyDone())],
    ['server', w.cat(w.commandComplete('COPY 2'), w.ready())],
    ['client', w.query(`COPY t TO STDOUT; SELECT '${'é'.repeat(30000)}'`)],
    [
      'server',
      w.cat(
        w.copyOutResponse(),
        w.copyDataOut('y'.repeat(50000)),
        w.copyDoneOut(),
        w.commandComplete('COPY 1'),
        w.dataRow(['z'.repeat(40000)]),
        w.commandComplete('SELECT 1'),
        w.ready(),
      ),
    ],
  ],
];

/** Cuts a buffer at the given fractions of its length. */
function cut(bytes: Buffer, fractions: readonly number[]): Buffer[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    if (p > last && p < bytes.length) {
      out.push(bytes.subarray(last, p));
      last = p;
    }
  }
  out.push(bytes.subarray(last));
  return out;
}

describe('tap fuzzing', () => {
  it('random chunking of valid streams gives identical events', () => {
    const classifier = new Classifier();
    const whole = SCENARIOS.map((steps) => summary(run(steps, { classifier, logParameters: true }).events));
    assert.ok(whole.every((events) => events.length > 0));
    fc.assert(
      fc.property(
        fc.nat(SCENARIOS.length - 1),
        fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }), { minLength: 8, maxLength: 8 }),
        (pick, fractions) => {
          const steps: Step[] = [];
          SCENARIOS[pick]!.forEach(([side, bytes], i) => {
            for (const piece of cut(bytes, fractions[i % fractions.length]!)) steps.push([side, piece]);
          });
          assert.deepEqual(summary(run(steps, { classifier, logParameters: true }).events), whole[pick]);
          return true;
        },
      ),
      { numRuns: 500 },
    );
  });

  it('one byte at a time gives identical events', () => {
    const classifier = new Classifier();
    const steps = SCENARIOS[1]!;
    const bytewise: Step[] = steps.flatMap(([side, bytes]) => [...bytes].map((b): Step => [side, Buffer.from([b])]));
    assert.deepEqual(summary(run(bytewise, { classifier }).events), summary(run(steps, { classifier }).events));
  });

  it('random bytes, alone or after a valid prefix, never throw', () => {
    const classifier = new Classifier();
    const chunk = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.tuple(fc.boolean(), chunk), { maxLength: 30 }), (prefix, chunks) => {
        const audit = new SessionAudit({ classifier, onStatement: () => {}, logParameters: true });
        if (prefix) {
          audit.fromClient(w.query('SELECT 1'));
          audit.fromServer(w.cat(w.commandComplete('SELECT 1'), w.ready()));
        }
        for (const [client, bytes] of chunks) {
          if (client) audit.fromClient(bytes);
          else audit.fromServer(bytes);
        }
        audit.end();
        assert.ok(audit.error === null || typeof audit.error === 'string');
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it('well-framed messages of random type and content never throw', () => {
    const classifier = new Classifier();
    const message = fc.tuple(fc.constantFrom(...'QPBEFCSDHdcfXZ12sIGHVTnt3NA'.split('')), fc.uint8Array({ maxLength: 40 })).map(([type, body]) => {
      const header = Buffer.alloc(5);
      header.write(type, 0, 'latin1');
      header.writeInt32BE(body.length + 4, 1);
      return Buffer.concat([header, body]);
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), message), { maxLength: 40 }), (messages) => {
        const events: unknown[] = [];
        const audit = new SessionAudit({ classifier, onStatement: (e) => events.push(e), logParameters: true });
        for (const [client, bytes] of messages) {
          if (client) audit.fromClient(bytes);
          else audit.fromServer(bytes);
        }
        audit.end();
        // The audit may stop on a stream it cannot follow exactly (a message inside COPY data):
        // that ends the session (fail closed); it must never be a thrown error.
        assert.ok(audit.error === null || !audit.error.startsWith('audit tap failed'), audit.error ?? '');
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});
