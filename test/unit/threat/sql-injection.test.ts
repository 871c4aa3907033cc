// The SQL-injection detector on a committed corpus (test/fixtures/sqli/templates.json): benign
// statements (pgbench's scripts and application queries with ORs, comments, legitimate UNIONs,
// catalog queries) with many literal values, and injected ones made by putting classic payloads
// into their literal slots as an application that concatenates input would. Reports precision
// and recall; goals: recall ≥ 0.95, at most 1 false alert per 10,000 benign statements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SqlInjectionDetector } from '../../../src/threat/sql/detector.js';
import { shapesOf } from '../../../src/threat/sql/shapes.js';

const corpus = JSON.parse(readFileSync(new URL('../../../../test/fixtures/sqli/templates.json', import.meta.url), 'utf8')) as {
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
  console.log(JSON.stringify({ benign, injected, caught, falseAlerts, recall: Number(recall.toFixed(4)), precision: Number(precision.toFixed(4)), falseAlertsPer10k: Number(per10k.toFixed(2)), missed: missed.slice(0, 3), falses }));
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
