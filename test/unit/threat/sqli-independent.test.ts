// The SQL-injection detector on the independent corpus (support/fixtures/sqli-independent): built
// apart from the detector, from public payload lists put into statements of several application
// styles, and a benign set with psql's own catalog queries (`psql -E`), pgbench's statements and
// ORM/reporting/stored-procedure statements. Goals per family: recall ≥ 0.95 on injections that
// parse; at most 1 false alert per 10,000 benign statements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqlInjectionDetector } from '../../../src/threat/sql/detector.js';
import { shapesOf } from '../../../src/threat/sql/shapes.js';
import { per10k, recall, score } from '../../../support/fixtures/sqli-independent/corpus.js';

test('recall and false alerts per family on the independent corpus', () => {
  const d = new SqlInjectionDetector();
  const judge = (text: string) => d.inspect({ role: 'app', application: 'web', text, timeMs: 0 }) !== null;
  const r = score(judge, (text) => shapesOf(text) !== null);
  for (const f of r.benign)
    console.log(
      JSON.stringify({
        benign: f.family,
        statements: f.statements,
        falseAlerts: f.flagged,
        per10k: Number(per10k(f).toFixed(2)),
        examples: f.examples.slice(0, 2),
      }),
    );
  for (const f of r.injections)
    console.log(
      JSON.stringify({ injections: f.family, parsing: f.statements, caught: f.flagged, recall: Number(recall(f).toFixed(4)), missed: f.examples.slice(0, 2) }),
    );
  const benign = new Map(r.benign.map((f) => [f.family, f]));
  assert.deepEqual([...benign.keys()].sort(), ['orm', 'pgbench', 'procedures', 'psql', 'reporting']);
  assert.ok(benign.get('psql')!.statements >= 200, 'psql -E catalog queries');
  for (const f of r.benign) {
    assert.ok(per10k(f) <= 1, `${f.family}: ${f.flagged} false alerts in ${f.statements}: ${f.examples.join(' | ')}`);
  }
  assert.ok(r.injections.length >= 8);
  for (const f of r.injections) {
    assert.ok(f.statements >= 50, `${f.family}: ${f.statements} injections that parse`);
    assert.ok(recall(f) >= 0.95, `${f.family}: recall ${recall(f)}; missed e.g. ${f.examples.join(' | ')}`);
  }
});
