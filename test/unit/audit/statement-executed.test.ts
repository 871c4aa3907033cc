// The statement event built once, with its canonical JSON written alongside, serializes exactly
// as the spread event it replaces.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { eventSession, statementExecuted } from '../../../src/audit/statement-json.js';
import { canonicalJson, canonicalJsonOfPlain, canonicalTextOf } from '../../../src/audit/store/canonical-json.js';
import type { StatementEvent } from '../../../src/audit/tap/index.js';

const conn = { connId: 'c1', clientAddress: '127.0.0.1', clientPort: 5000, listener: 'public' as const, privateEndpoint: 'pe' };

function check(st: StatementEvent, fields: Record<string, string | undefined>): void {
  const spread = {
    type: 'statement',
    time: '2026-12-05T02:00:00.000Z',
    connection: conn,
    ...fields,
    ...st,
    objects: [...st.objects],
    classes: [...st.classes],
  };
  const built = statementExecuted('2026-12-05T02:00:00.000Z', eventSession(conn, fields), st);
  const expected = canonicalJson(spread);
  assert.equal(canonicalTextOf(built), expected);
  assert.equal(canonicalJsonOfPlain(built), expected, 'the object itself serializes the same');
  assert.equal(canonicalTextOf({ ...built }), undefined, 'only that very object carries the text');
}

it('statementExecuted: the canonical JSON of the spread event', () => {
  const base: StatementEvent = {
    text: 'SELECT 1',
    class: 'READ',
    classes: Object.freeze(['READ'] as const),
    commandTag: 'SELECT',
    objects: Object.freeze([{ kind: 'relation', name: 'public.t' }] as const),
    outcome: 'success',
    durationMs: 1.5,
    protocol: 'simple',
  };
  const full: StatementEvent = {
    ...base,
    classes: ['READ', 'WRITE'],
    params: ['1', null, '"\u2028x'],
    outcome: 'failure',
    sqlstate: '22012',
    errorMessage: 'division "by" zero\n',
    rows: 0,
    copyBytes: 10,
    truncated: true,
    textLength: 9000,
    textSha256: 'ab',
    parseError: 'x',
    durationMs: 0.1 + 0.2,
  };
  for (const st of [base, full]) {
    for (const fields of [{}, { server: 's', user: 'u', database: 'd', applicationName: 'a\u00e9', objectId: 'o' }, { server: 's', user: undefined }])
      check(st, fields);
  }
});

it('statementExecuted: any text, numbers and fields', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary' }),
      fc.double({ min: 0, max: 1e9, noNaN: true }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.option(fc.array(fc.option(fc.string(), { nil: null })), { nil: undefined }),
      fc.option(fc.string({ unit: 'binary' }), { nil: undefined }),
      (text, durationMs, rows, params, app) => {
        const st: StatementEvent = {
          text,
          class: 'MISC',
          classes: ['MISC'],
          commandTag: 'SHOW',
          objects: [],
          outcome: 'unknown',
          durationMs,
          protocol: 'extended',
          ...(rows !== undefined ? { rows } : {}),
          ...(params !== undefined ? { params } : {}),
        };
        check(st, { server: 'srv', applicationName: app });
      },
    ),
  );
});

it('statementExecuted: texts with and without characters JSON escapes (quoted as they are only when there are none)', () => {
  const base: StatementEvent = {
    text: '',
    class: 'READ',
    classes: Object.freeze(['READ'] as const),
    commandTag: 'SELECT',
    objects: Object.freeze([] as const),
    outcome: 'failure',
    durationMs: 0.25,
    protocol: 'simple',
  };
  const texts = [
    '',
    'SELECT abalance FROM pgbench_accounts WHERE aid = 4242;',
    "SELECT 'é', '\u007f', '\u2028\u2029', '😀'", // nothing escaped: DEL, line separators, a surrogate pair
    'SELECT "quoted"',
    'SELECT \\ 1',
    'SELECT\n1\t\u0000\u001f',
    'lone \ud800 high',
    'lone \udfff low',
    '😀'.slice(0, 1),
  ];
  for (const text of texts) {
    for (const errorMessage of [text, 'plain']) check({ ...base, text, errorMessage, sqlstate: '22012', parseError: text }, { server: text, user: 'u' });
  }
});

it('statementExecuted: one session over a sequence of statements (the runs it reuses follow every change)', () => {
  // Lists shared between statements, as the classifier shares them per shape, and fresh ones.
  const classLists = [Object.freeze(['READ'] as const), Object.freeze(['READ', 'WRITE'] as const), Object.freeze([] as const)];
  const objectLists = [Object.freeze([{ kind: 'relation', name: 'public.t' }] as const), Object.freeze([] as const)];
  const statement = fc.record(
    {
      text: fc.string({ unit: 'binary', maxLength: 20 }),
      class: fc.constantFrom('READ', 'WRITE', 'MISC', 'UNKNOWN'),
      classes: fc.oneof(fc.constantFrom(...classLists), fc.constantFrom(['READ'], ['DDL', 'ROLE'])),
      commandTag: fc.constantFrom('SELECT', 'INSERT', 'SET', 'CREATE TABLE', '"odd"'),
      objects: fc.oneof(fc.constantFrom(...objectLists), fc.constant([{ kind: 'function', name: 'f"\n' }])),
      outcome: fc.constantFrom('success', 'failure', 'unknown'),
      // Any double, and whole microseconds as the tap records them (formatted from the integer).
      durationMs: fc.oneof(
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.integer({ min: 0, max: 1e12 }).map((k) => k / 1000),
      ),
      protocol: fc.constantFrom('simple', 'extended', 'function'),
      params: fc.array(fc.option(fc.string(), { nil: null }), { maxLength: 2 }),
      parseError: fc.string({ maxLength: 5 }),
      sqlstate: fc.constantFrom('22012', '42P01'),
      errorMessage: fc.string({ unit: 'binary', maxLength: 8 }),
      rows: fc.nat(),
      copyBytes: fc.nat(),
      truncated: fc.constant(true),
      textLength: fc.nat(),
      textSha256: fc.constant('ab'),
    },
    { requiredKeys: ['text', 'class', 'classes', 'commandTag', 'objects', 'outcome', 'durationMs', 'protocol'] },
  ) as fc.Arbitrary<StatementEvent>;
  const fields = fc.constantFrom<Record<string, string | undefined>>(
    {},
    { server: 's', user: 'u', database: 'd', applicationName: 'a', objectId: 'o' },
    { server: 's' },
  );
  fc.assert(
    fc.property(fields, fc.array(statement, { minLength: 1, maxLength: 12 }), (f, statements) => {
      const session = eventSession(conn, f);
      for (const st of statements) {
        const built = statementExecuted('2026-12-05T02:00:00.000Z', session, st);
        const expected = canonicalJson({ type: 'statement', time: '2026-12-05T02:00:00.000Z', connection: conn, ...f, ...st });
        assert.equal(canonicalTextOf(built), expected);
        assert.equal(canonicalJsonOfPlain(built), expected);
      }
    }),
    { numRuns: 2000 },
  );
});
