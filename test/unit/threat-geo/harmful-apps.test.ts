// Attack tools by application_name: every listed tool is recognized in the spellings it is
// known by, ordinary clients and drivers are not, and a broken data file is a clear error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { HarmfulAppMatcher } from '../../../src/threat/detectors/login-anomaly.js';
import { HarmfulAppsDataError, loadHarmfulApplicationRules, matchHarmfulApplication } from '../../../src/threat/intel/harmful-apps.js';

const matcher: HarmfulAppMatcher = matchHarmfulApplication; // what the detectors call
const tool = (name: string | undefined) => matcher(name)?.tool ?? null;

test('attack tools are recognized, case-insensitively, with versions and decorations', () => {
  const cases: [string, string][] = [
    ['sqlmap', 'sqlmap'], ['sqlmap/1.8.2#stable (https://sqlmap.org)', 'sqlmap'], ['SQLMAP', 'sqlmap'],
    ['hydra', 'Hydra'], ['THC-Hydra v9.5', 'Hydra'], ['hydra/9.4', 'Hydra'],
    ['ncrack', 'Ncrack'], ['Ncrack 0.7', 'Ncrack'],
    ['medusa', 'Medusa'], ['Medusa v2.2', 'Medusa'],
    ['Metasploit', 'Metasploit'], ['msfconsole', 'Metasploit'], ['msf6', 'Metasploit'], ['msf', 'Metasploit'],
    ['nmap', 'Nmap'], ['Nmap NSE', 'Nmap'], ['pgsql-brute', 'Nmap'],
    ['patator', 'Patator'], ['pgbrute', 'pgbrute'], ['pg_brute', 'pgbrute'], ['crowbar', 'Crowbar'],
    ['thc-pgsql', 'THC tools'], ['brutus', 'Brutus'], ['brutespray', 'BruteSpray'], ['legba', 'Legba'],
    ['Havij', 'Havij'], ['jSQL Injection', 'jSQL Injection'], ['jsql', 'jSQL Injection'],
    ['NoSQLMap', 'NoSQLMap'], ['bbqsql', 'BBQSQL'], ['ghauri', 'Ghauri'],
  ];
  for (const [name, expected] of cases) assert.equal(tool(name), expected, name);
  const hit = matchHarmfulApplication('sqlmap/1.8');
  assert.deepEqual(Object.keys(hit ?? {}).sort(), ['description', 'tool']);
  assert.match(hit!.description, /SQL injection/);
});

test('ordinary clients, drivers and tools are not attack tools', () => {
  const normal = [
    'psql', 'pgAdmin 4', 'pgAdmin 4 - DB:postgres', 'DBeaver 24.0.5 - Main <postgres>', 'node-postgres', 'PostgreSQL JDBC Driver',
    'metabase', 'Metabase v0.50.3', 'pg_dump', 'pg_restore', 'pg_basebackup', 'pgbench', 'pg_dumpall', 'psycopg', 'Npgsql', 'DataGrip 2024.1',
    'TablePlus', 'Grafana', 'PostgREST 12.0.2', 'Prisma', 'typeorm', 'sqlalchemy', 'Hasura', 'superset', 'airflow', 'Debezium',
    'healthcheck', 'hydration-worker', 'medusa-backend', 'msft-sync', 'jsqlparser', 'mysql-compat', 'nmapper', 'pgbouncer', 'app',
    'sql-map-reduce', 'Navicat', 'HeidiSQL', 'Postico 2', 'pgcli', 'Azure Data Studio', 'pg_stat_monitor', '',
  ];
  for (const n of normal) assert.equal(tool(n), null, n);
  assert.equal(tool(undefined), null);
});

test('fuzz: never throws, and any name containing "sqlmap" is an attack tool', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void matchHarmfulApplication(s)), { numRuns: 2000 });
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (a, b) => {
      assert.notEqual(tool(`${a}sqlmap${b}`), null, `${a}sqlmap${b}`);
    }),
    { numRuns: 500 },
  );
});

test('every rule in the shipped list loads; a broken list is a HarmfulAppsDataError naming the rule', () => {
  const rules = loadHarmfulApplicationRules();
  assert.ok(rules.length >= 15);
  assert.equal(new Set(rules.map((r) => r.tool)).size, rules.length, 'one rule per tool');
  const dir = mkdtempSync(path.join(tmpdir(), 'pgwarden-apps-'));
  try {
    const file = path.join(dir, 'apps.json');
    writeFileSync(file, JSON.stringify([{ tool: 'x', match: 'regex', pattern: '(', description: 'd' }]));
    assert.throws(() => loadHarmfulApplicationRules(file), (e: unknown) => e instanceof HarmfulAppsDataError && /rule 0 .*"x".*invalid pattern/.test(e.message));
    writeFileSync(file, JSON.stringify([{ tool: 'x', match: 'glob', pattern: 'x', description: 'd' }]));
    assert.throws(() => loadHarmfulApplicationRules(file), /needs "match": "substring" or "regex"/);
    writeFileSync(file, '{');
    assert.throws(() => loadHarmfulApplicationRules(file), HarmfulAppsDataError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
