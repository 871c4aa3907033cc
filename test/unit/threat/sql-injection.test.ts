// The SQL-injection detector on a committed corpus (support/fixtures/sqli/templates.json): benign
// statements (pgbench's scripts and application queries with ORs, comments, legitimate UNIONs,
// catalog queries) with many literal values, and injected ones made by putting classic payloads
// into their literal slots as an application that concatenates input would. Reports precision
// and recall; goals: recall ≥ 0.95, at most 1 false alert per 10,000 benign statements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SqlInjectionDetector } from '../../../src/threat/sql/detector.js';
import { shapesOf } from '../../../src/threat/sql/shapes.js';

const corpus = JSON.parse(readFileSync(new URL('../../../../support/fixtures/sqli/templates.json', import.meta.url), 'utf8')) as {
  benign: string[];
  payloads: { s: string[]; n: string[] };
};
const WORDS = ['lamp', 'books', "O''Brien", 'garden tools', 'alice@example.com', 'open', 'north', 'fr', 'x', 'Müller', 'a-b_c', '100%', 'or', 'and', 'union'];

function fill(template: string, i: number, inject?: { slot: number; payload: string }): string {
  let slot = 0;
  return template.replace(/\{(s|n)\}/g, (_m, kind: string) => {
    const k = slot++;
    if (inject && inject.slot === k) return inject.payload;
    return kind === 'n' ? String((i * 7919 + k * 31) % 100000) : WORDS[(i + k) % WORDS.length]!;
  });
}

function slots(template: string): ('s' | 'n')[] {
  return [...template.matchAll(/\{(s|n)\}/g)].map((m) => m[1] as 's' | 'n');
}

test('precision and recall on the corpus', () => {
  const d = new SqlInjectionDetector();
  const inspect = (text: string) => d.inspect({ role: 'app', application: 'web', text, timeMs: 0 });
  let benign = 0;
  let falseAlerts = 0;
  const falses: string[] = [];
  for (let i = 0; benign < 10_000; i++) {
    for (const t of corpus.benign) {
      const text = fill(t, i);
      benign++;
      if (inspect(text)) {
        falseAlerts++;
        if (falses.length < 5) falses.push(text);
      }
    }
  }
  let injected = 0;
  let caught = 0;
  const missed: string[] = [];
  for (const [ti, t] of corpus.benign.entries()) {
    slots(t).forEach((kind, slot) => {
      for (const payload of corpus.payloads[kind]) {
        const text = fill(t, ti, { slot, payload });
        // A payload that does not parse is a syntax error at the server: the burst detector's case.
        if (shapesOf(text) === null) continue;
        injected++;
        if (inspect(text)) caught++;
        else if (missed.length < 10) missed.push(text);
      }
    });
  }
  const recall = caught / injected;
  const precision = caught / (caught + falseAlerts);
  const per10k = (falseAlerts / benign) * 10_000;
  console.log(
    JSON.stringify({
      benign,
      injected,
      caught,
      falseAlerts,
      recall: Number(recall.toFixed(4)),
      precision: Number(precision.toFixed(4)),
      falseAlertsPer10k: Number(per10k.toFixed(2)),
      missed: missed.slice(0, 3),
      falses,
    }),
  );
  assert.ok(injected > 300, `${injected} injected statements`);
  assert.ok(recall >= 0.95, `recall ${recall}; missed e.g. ${missed.join(' | ')}`);
  assert.ok(per10k <= 1, `${falseAlerts} false alerts in ${benign}: ${falses.join(' | ')}`);
});

test('bursts of syntax errors from one application are one SqlInjectionVulnerability per window', () => {
  const d = new SqlInjectionDetector({ syntaxErrorBurst: 5, syntaxErrorWindowMs: 10_000 });
  const err = (t: number, application = 'web') => d.inspect({ role: 'app', application, text: "select * from t where x = 'a''", sqlstate: '42601', timeMs: t });
  assert.equal(err(0), null);
  for (let i = 1; i < 4; i++) assert.equal(err(i * 100), null);
  assert.equal(err(500)?.type, 'SqlInjectionVulnerability');
  assert.equal(err(600), null, 'once per window');
  assert.equal(err(700, 'other-app'), null, 'per application');
  // A window later, a new burst is a new finding.
  const again = [0, 1, 2, 3, 4].map((i) => err(20_000 + i)?.type ?? null);
  assert.deepEqual(again, [null, null, null, null, 'SqlInjectionVulnerability']);
});

test('evidence has no literal values', () => {
  const d = new SqlInjectionDetector();
  const f = d.inspect({ role: 'app', application: 'web', text: "select * from users where email = 'secret@example.com' or 'a'='a'", timeMs: 0 });
  assert.ok(f);
  assert.doesNotMatch(f.evidence, /secret@example\.com/);
  assert.deepEqual(f.shapes, ['tautology']);
});

// Issue 20: probes that generalise (the independent corpus missed these), psql's own catalog
// queries, learned application shapes, the verdict tool's check(), per-shape exclusions.
const psqlQueries = JSON.parse(readFileSync(new URL('../../../../support/fixtures/sqli-independent/psql-catalog.json', import.meta.url), 'utf8')) as string[];

test('boolean-blind, CHR() building, error oracles, OR true and ILIKE tautologies are injections', () => {
  const d = new SqlInjectionDetector();
  const shapes = (text: string) => d.inspect({ role: 'app', application: 'web', text, timeMs: 0 })?.shapes ?? [];
  const cases: [string, string][] = [
    ["SELECT * FROM users WHERE name = '' AND substr(current_user,1,1)='p'", 'boolean-probe'],
    ['SELECT * FROM users WHERE id = 1 AND (SELECT count(*) FROM pg_user) > 0', 'boolean-probe'],
    ['SELECT * FROM users WHERE id = 1 AND (SELECT length(current_database()))>3', 'boolean-probe'],
    ["SELECT * FROM users WHERE name = ''||(SELECT CHR(65)||CHR(66))||''", 'string-building'],
    ['SELECT * FROM users WHERE id = 1 AND 1=(SELECT 1/(SELECT 0))', 'error-division'],
    ['SELECT * FROM users WHERE id = 1 OR true', 'tautology'],
    ['SELECT * FROM users WHERE id = 1 OR NOT false', 'tautology'],
    ["SELECT * FROM products WHERE name ILIKE '%' OR '1'='1%'", 'boolean-probe'],
    ['SELECT * FROM users WHERE id = 1 AND 7160=CAST((CHR(113)||CHR(122))||(SELECT 1)::text AS NUMERIC)', 'error-based-cast'],
    ["SELECT * FROM users WHERE name = ''; SELECT pg_sleep(5)--'", 'stacked-statements'],
    ['SELECT * FROM users WHERE id = 1 UNION SELECT NULL', 'union-extraction'],
    ['SELECT * FROM users WHERE id = 1--', 'comment-truncation'],
  ];
  for (const [text, shape] of cases) assert.ok(shapes(text).includes(shape), `${text}: ${shapes(text).join(',') || 'nothing'}`);
});

test("psql's own catalog queries (psql -E, every backslash command) raise nothing, \\dd, \\d+ and \\deu included", () => {
  const d = new SqlInjectionDetector();
  assert.ok(psqlQueries.length >= 200);
  assert.ok(
    psqlQueries.some((q) => q.includes('pg_catalog.pg_user_mappings')),
    '\\deu',
  );
  assert.ok(
    psqlQueries.some((q) => q.includes('pg_catalog.pg_publication p') && q.includes('UNION')),
    '\\d+ with publications',
  );
  const flagged = psqlQueries.filter((text) => d.inspect({ role: 'postgres', application: 'psql', text, timeMs: 0 }));
  assert.deepEqual(flagged, []);
});

test('benign application look-alikes raise nothing', () => {
  const d = new SqlInjectionDetector();
  for (const text of [
    "SELECT * FROM documents WHERE 1=1 AND owner_id = 4 AND title LIKE 'a%'",
    'SELECT "articles".* FROM "articles" WHERE "articles"."author_id" = 3 AND 1=0',
    "SELECT id FROM tickets WHERE tenant = current_setting('app.tenant') AND id = 9",
    "SELECT * FROM notes WHERE owner = current_user AND title = 'x'",
    "SELECT kind, count(*) FROM events WHERE kind = 'a' OR kind = 'login' GROUP BY 1 HAVING count(*) > 5",
    "SELECT items.id FROM items WHERE items.id IN (1, 2) AND (items.owner = 'x' OR items.public = true)",
    "SELECT first_name || ' ' || last_name || chr(10) FROM staff WHERE department = 'or 1=1'",
    "SELECT extract(epoch FROM now())::bigint - 60 AS since FROM jobs WHERE queue = 'q'",
    'SELECT pg_sleep(1)',
    "SELECT 'total' AS label, sum(amount) FROM payments WHERE m = 'x' UNION SELECT method, sum(amount) FROM payments WHERE m = 'x' GROUP BY method",
  ])
    assert.equal(d.inspect({ role: 'app', application: 'web', text, timeMs: 0 }), null, text);
});

test('learned shapes: an extension at a literal or a truncation after one is an injection; new filters, pages and IN lists are not', () => {
  const d = new SqlInjectionDetector();
  const inspect = (text: string, learn = false, application = 'billing') => d.inspect({ role: 'app', application, text, timeMs: 0, learn });
  assert.equal(inspect("select id, name from items where name = 'lamp' and price < 40", true), null);
  assert.equal(inspect("select * from users where login = 'bob' and password_hash = 'x' limit 1", true), null);
  assert.equal(inspect('select id from items where id in (1, 2) limit 10', true), null);
  assert.equal(d.learned.size, 3);
  // No rule sees these; each is a learned statement grown or cut at a literal.
  const grown = inspect("select id, name from items where name = '' OR name LIKE '%' and price < 40");
  assert.deepEqual(grown?.shapes, ['learned-shape']);
  assert.match(grown!.detail, /\(learned shape [0-9a-f]{16}\)$/);
  assert.deepEqual(
    inspect("select * from users where login = '' UNION SELECT login, password_hash FROM users WHERE login = '' and password_hash = 'x' limit 1")?.shapes,
    ['learned-shape'],
  );
  assert.deepEqual(inspect("select * from users where login = 'admin'--")?.shapes, ['learned-shape']);
  // Only for the application that learned it.
  assert.equal(inspect("select id, name from items where name = '' OR name LIKE '%' and price < 40", false, 'other'), null);
  // What applications do on their own: a further AND filter, another page, a longer IN list.
  assert.equal(inspect("select id, name from items where name = 'lamp' and price < 40 and stock > 0"), null);
  assert.equal(inspect('select id from items where id in (1, 2, 3, 4) limit 10 offset 20'), null);
  assert.equal(inspect("select id, name from items where name = 'desk' and price < 99"), null);
});

test('settled (the native relay may skip the shape): in the learning period only a learned shape; after it, a learned one or any of an application that learned nothing', () => {
  const d = new SqlInjectionDetector();
  const lamp = "select id from items where name = 'lamp'";
  const desk = "select id from items where name = 'desk'";
  const other = 'select count(*) from orders where total > 10';
  const settled = (text: string, learning: boolean, application = 'billing') => d.settled({ role: 'app', application, text, learning });
  // Learning, nothing learned yet: every new shape is still to be learned.
  assert.equal(settled(lamp, true), false);
  assert.equal(d.inspect({ role: 'app', application: 'billing', text: lamp, timeMs: 0, learn: true }), null);
  // Learned: its shape (other literals) is judged alike from now on, in the learning period too.
  assert.equal(settled(desk, true), true);
  assert.equal(settled(other, true), false, 'a shape not learned yet');
  assert.equal(settled(desk, true, 'reports'), false, 'learned by another application');
  // After the learning period: a learned shape, or any shape of an application that learned nothing.
  assert.equal(settled(desk, false), true);
  assert.equal(settled(other, false), false, 'the application learned shapes, not this one');
  assert.equal(settled(other, false, 'reports'), true);
  // An injection-looking shape never is.
  assert.equal(settled("select id from items where name = '' or '1'='1'", false, 'reports'), false);
});

test('learned shapes are bounded per application and per server, and handed over once for storage', async () => {
  const { LearnedShapes } = await import('../../../src/threat/sql/learned.js');
  const l = new LearnedShapes({ perApplication: 2, perServer: 3 });
  assert.equal(l.learn('r', 'a', 'f1', ['select', '?'], 1), true);
  assert.equal(l.learn('r', 'a', 'f1', ['select', '?'], 2), false);
  assert.equal(l.learn('r', 'a', 'f2', ['select', '?', ',', '?'], 2), true);
  assert.equal(l.learn('r', 'a', 'f3', ['select', '?', ',', '?', ',', '?'], 3), false, 'per application');
  assert.equal(l.learn('r', 'b', 'f4', ['select', '?'], 4), true);
  assert.equal(l.learn('r', 'c', 'f5', ['select', '?'], 5), false, 'per server');
  const rows = l.takePending();
  assert.deepEqual(
    rows.map((r) => r.fingerprint),
    ['f1', 'f2', 'f4'],
  );
  assert.deepEqual(l.takePending(), []);
  const restored = new LearnedShapes();
  restored.load(rows);
  assert.equal(restored.size, 3);
  assert.equal(restored.has('r', 'a', 'f2'), true);
});

test("check(): the verdict tool's answer, with and without learned shapes", () => {
  const d = new SqlInjectionDetector();
  d.inspect({ role: 'app', application: 'billing', text: "select id from items where name = 'lamp' and price < 40", timeMs: 0, learn: true });
  const injected = "select id from items where name = '' OR name LIKE '%' and price < 40";
  assert.deepEqual(d.check(injected, { application: null, role: null, learned: false }), {
    verdict: 'none',
    shapes: [],
    detail: 'no injection shape',
    fingerprint: d.check(injected, { application: null, role: null, learned: false }).fingerprint,
  });
  const learned = d.check(injected, { application: 'billing', role: null, learned: true });
  assert.equal(learned.verdict, 'SqlInjection');
  assert.deepEqual(learned.shapes, ['learned-shape']);
  assert.equal(
    d.check("select id from items where name = 'desk' and price < 7", { application: 'billing', role: 'app', learned: true }).detail,
    'a learned shape of this application',
  );
  const bad = d.check("select * from t where x = 'a", { application: null, role: null, learned: false });
  assert.equal(bad.verdict, 'none');
  assert.match(bad.detail, /^the statement does not parse/);
});

test('per-shape exclusions: SqlInjection:<fingerprint> entries', async () => {
  const { isSqliAllowEntry, sqliAllowed, sqliAllowEntry } = await import('../../../src/threat/sql/allow.js');
  assert.equal(sqliAllowEntry('ABCDEF0123456789'), 'SqlInjection:abcdef0123456789');
  assert.equal(isSqliAllowEntry('SqlInjection:abcdef0123456789'), true);
  assert.equal(isSqliAllowEntry('SqlInjection:xyz'), false);
  assert.equal(sqliAllowed({ disabledAlerts: ['SqlInjection:abcdef0123456789'] }, 'abcdef0123456789'), true);
  assert.equal(sqliAllowed({ disabledAlerts: ['SqlInjection'] }, 'abcdef0123456789'), false);
});
