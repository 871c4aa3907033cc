// The shape lexer and the shape cache: texts that differ only in literal values share one parse,
// and must classify exactly as their own parse would. Checked on hand-picked edge cases and on
// generated pairs of texts, against the real PostgreSQL scanner and a cache-less classifier.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Classifier } from '../../../../src/audit/classify/index.js';
import { keySegments, lexShape, sameShape } from '../../../../src/sql/lexer.js';
import { scanSql } from '../../../../src/sql/parser.js';

const literals = (sql: string): string[] => {
  const lexed = lexShape(sql);
  assert.ok(lexed !== null, sql);
  return lexed.starts.map((s, k) => sql.slice(s, lexed.ends[k]));
};

describe('shape lexer', () => {
  it('takes plain strings and short numbers, leaves everything else verbatim', () => {
    const sql =
      "SELECT 'a''b', 12, 3.5, 1e5, $1, E'x\\'y', $$ 'd' $$, $q$'$q$, U&'z', B'01', x'1F', N'n', 1234567890, .5, t1, " +
      "\"q'uote\", 1_000, 0x1F -- 'c'\n /* '/* nested */' */ 'last'";
    assert.deepEqual(literals(sql), ["'a''b'", '12', '3.5', "'last'"]);
  });
  it('the key replaces each literal by one marker', () => {
    const lexed = lexShape("SELECT 'x', 42 FROM t")!;
    assert.equal(lexed.key, 'SELECT \u0000, \u0001 FROM t');
    assert.deepEqual(lexed.keyPos, [7, 10]);
    assert.equal(lexShape('SELECT 1.5')!.key, 'SELECT \u0003');
    assert.equal(lexShape('SELECT a FROM t')!.key, 'SELECT a FROM t');
  });
  it('gives up on text it cannot follow', () => {
    for (const sql of [
      "SELECT 'open",
      'SELECT /* open',
      "SELECT 'a'\n'b'",
      "SELECT 'a' \n -- c\n 'b'",
      'SELECT $$x',
      'SELECT "x',
      "SELECT E'x",
      "E'x\\'y' \n ''", // an escape string continued on the next line (found by the property below)
      "\u0001SELECT 'a'",
    ]) {
      assert.equal(lexShape(sql), null, JSON.stringify(sql));
    }
    assert.notEqual(lexShape("SELECT 'a' -- c\n 'b'"), null); // a comment before the newline: no continuation
  });
  it('agrees with the PostgreSQL scanner on generated text', () => {
    fc.assert(
      fc.property(fragmentText, (sql) => {
        const lexed = lexShape(sql);
        const tokens = scanSql(sql);
        if (lexed === null || tokens === null) return true;
        const bytes = (i: number) => Buffer.byteLength(sql.slice(0, i));
        for (let k = 0; k < lexed.starts.length; k++) {
          const start = bytes(lexed.starts[k]!);
          const end = bytes(lexed.ends[k]!);
          const token = tokens.find((t) => t.start === start);
          assert.ok(token !== undefined && token.end === end, `literal ${sql.slice(lexed.starts[k], lexed.ends[k])} in ${JSON.stringify(sql)}`);
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});

describe('shape cache', () => {
  const options = { redactColumns: ['ssn'], redactPatterns: [/7/] };
  it('a cached shape gives what a fresh parse of the text gives', () => {
    fc.assert(
      fc.property(skeleton, fc.array(value, { minLength: 12, maxLength: 12 }), fc.array(value, { minLength: 12, maxLength: 12 }), (parts, one, two) => {
        const first = fill(parts, one);
        const second = fill(parts, two);
        const cached = new Classifier(options);
        cached.classify(first);
        const exact = new Classifier({ ...options, shapes: false });
        assert.deepEqual(cached.classify(second), exact.classify(second), `${JSON.stringify(first)} then ${JSON.stringify(second)}`);
        return true;
      }),
      { numRuns: 1500 },
    );
  });
  it('never throws, whatever the text', () => {
    const c = new Classifier(options);
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 60 }), fragmentText), (sql) => {
        const infos = c.classify(sql);
        assert.ok(Array.isArray(infos));
        for (const info of infos) assert.equal(typeof info.redactedText, 'string');
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});

// Generated SQL: statement skeletons with holes ({} is a literal slot), filled twice.

const specials = [
  "E'x\\'y'",
  '$$ a $$',
  "$q$ ' $q$",
  "U&'d'",
  "B'01'",
  "X'1F'",
  '1e5',
  '.5',
  '1234567890',
  '$1',
  '$2',
  "'a'\n'b'",
  'NULL',
  'now()',
  'app.f(1)',
];
const separators = [' ', '\n', '\t', ' -- note \n', ' /* c */ ', ' /* a /* b */ c */ ', '', '\n\n'];
const idents = ['t', 's.t', 'ssn', '"Quoted""Id"', 'abc_1', 'é', 'name'];

const expr = fc.oneof(
  { weight: 5, arbitrary: fc.constant('{}') },
  { weight: 2, arbitrary: fc.constantFrom(...specials) },
  { weight: 1, arbitrary: fc.constant('f({})') },
  { weight: 1, arbitrary: fc.constant('{}::text') },
  { weight: 1, arbitrary: fc.constant('-{}') },
  { weight: 1, arbitrary: fc.constantFrom(...idents) },
);
const sep = fc.constantFrom(...separators);
const ident = fc.constantFrom(...idents);

const statement = fc.oneof(
  fc.tuple(expr, sep, expr, ident, ident, expr).map(([a, s, b, t, c, d]) => `SELECT ${a},${s}${b} FROM ${t} WHERE ${c} = ${d}`),
  fc.tuple(ident, expr, expr, expr, sep).map(([t, a, b, c, s]) => `UPDATE ${t} SET ssn = ${a},${s}name = ${b} WHERE id = ${c}`),
  fc.tuple(ident, expr, expr).map(([t, a, b]) => `INSERT INTO ${t} (name, ssn) VALUES (${a}, ${b})`),
  fc.tuple(expr, sep).map(([a, s]) => `CREATE ROLE r${s}PASSWORD ${a}`),
  fc.tuple(expr, expr).map(([a, b]) => `DO $$BEGIN PERFORM ${a}; END$$; SELECT ${b}`),
  fc.tuple(expr, ident).map(([a, t]) => `COPY (SELECT ${a}) TO STDOUT; COPY ${t} FROM STDIN`),
  fc.tuple(expr, expr).map(([a, b]) => `SET search_path = ${a}; SELECT ${b} WHERE ssn IN (${a}, ${b})`),
  fc.tuple(expr, expr).map(([a, b]) => `DO ${a}; SELECT dblink_connect('c', ${b})`),
  fc.tuple(expr, expr).map(([a, b]) => `CREATE SERVER s FOREIGN DATA WRAPPER f OPTIONS (host ${a}, password ${b})`),
  fc
    .array(fc.oneof(expr, ident, sep, fc.constantFrom('SELECT', '(', ')', ',', ';', '=', '+', "'", '"', '$', '/*', '--')), { maxLength: 8 })
    .map((xs) => xs.join(' ')),
);

const skeleton = fc.tuple(statement, sep, fc.option(statement, { nil: undefined })).map(([a, s, b]) => (b === undefined ? a : `${a};${s}${b}`).split('{}'));

// Literal values by kind: a text keeps its shape when each literal is replaced by one of its kind.
const stringValue = fc.oneof(
  fc.string({ maxLength: 8 }).map((s) => `'${s.replaceAll("'", "''")}'`),
  fc.string({ unit: 'grapheme', maxLength: 4 }).map((s) => `'${s.replaceAll("'", "''").replaceAll('\0', '')}'`),
  fc.constantFrom(
    "'7'",
    "'x\\'",
    "''",
    "'--'",
    "'/*'",
    "'$$'",
    "'\n'",
    "'host=h password=pw'",
    "'BEGIN EXECUTE ''ALTER ROLE r PASSWORD ''''x''''''; END'",
    "'BEGIN NULL; END'",
  ),
);
const integerValue = fc.integer({ min: 0, max: 999_999_999 }).map(String);
const decimalValue = fc.tuple(fc.nat(99999), fc.nat(999)).map(([a, b]) => `${a}.${b}`);
const value = fc.oneof({ weight: 3, arbitrary: stringValue }, integerValue, decimalValue);

function fill(parts: readonly string[], values: readonly string[]): string {
  let out = parts[0]!;
  for (let i = 1; i < parts.length; i++) out += values[(i - 1) % values.length]! + parts[i]!;
  return out;
}

const fragmentText = fc.tuple(skeleton, fc.array(value, { minLength: 12, maxLength: 12 })).map(([parts, values]) => fill(parts, values));

describe('shape of the last shape', () => {
  // sameShape reads a text as the shape of the one before it: it must give lexShape's result, or null.
  const other = fc.oneof(value, fc.constantFrom('1234567890', '1.', '1e5', '.5', "E'x'", "'a'\n'b'", "'a' \n -- c\n 'b'", '$1', 'x', '', "'"));
  const check = (first: string, second: string) => {
    const prev = lexShape(first);
    if (prev === null || prev.keyPos.length === 0) return;
    const got = sameShape(second, prev, keySegments(prev));
    if (got !== null) assert.deepEqual(got, lexShape(second), `${JSON.stringify(first)} then ${JSON.stringify(second)}`);
  };
  // The second filling: mostly a value of the first one's kind in each place (the same shape, unless
  // a skeleton makes it another), sometimes a value of any kind or a text that is not a plain value.
  const refill = (kind: fc.Arbitrary<string>) =>
    fc.tuple(kind, fc.oneof({ weight: 24, arbitrary: kind }, { weight: 2, arbitrary: value }, { weight: 1, arbitrary: other }));
  const fillings = fc
    .array(fc.oneof({ weight: 3, arbitrary: refill(stringValue) }, refill(integerValue), refill(decimalValue)), { minLength: 12, maxLength: 12 })
    .map((pairs) => [pairs.map(([a]) => a), pairs.map(([, b]) => b)] as const);
  it('agrees with the lexer on texts of one skeleton filled twice', () => {
    // How often the second text was read as the first one's shape: the property is not vacuous.
    // Measured over 20 runs: 1,844-1,910 of 3,000 (the old, kind-blind second filling gave 306-413,
    // and once in CI 300 or fewer).
    let same = 0;
    fc.assert(
      fc.property(skeleton, fillings, (parts, [one, two]) => {
        const first = fill(parts, one);
        const second = fill(parts, two);
        check(first, second);
        const prev = lexShape(first);
        if (prev !== null && prev.keyPos.length > 0 && sameShape(second, prev, keySegments(prev)) !== null) same++;
        return true;
      }),
      { numRuns: 3000 },
    );
    assert.ok(same > 1000, `the shape was recognized ${same} times`);
  });
  it('agrees with the lexer on unrelated texts and cut or extended ones', () => {
    fc.assert(
      fc.property(fragmentText, fc.oneof(fragmentText, fc.string({ unit: 'binary', maxLength: 40 })), fc.nat(80), (first, second, cut) => {
        check(first, second);
        check(first, first.slice(0, cut));
        check(first, `${first}${second.slice(0, cut % 5)}`);
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});
