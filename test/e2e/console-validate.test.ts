// The console's as-you-type checks (web/src/validate.ts, compiled to dist/web by `tsc -p web`):
// they must agree with the API's rules on the cases a user meets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Validate {
  serverNameProblem(name: string): string | null;
  loginProblem(login: string): string | null;
  passwordRules(password: string): { label: string; met: boolean }[];
  ipFamily(s: string): 4 | 6 | null;
  rangeProblem(start: string, end: string): string | null;
}

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/validate.js');
const v = (await import(pathToFileURL(file).href)) as Validate;

test('server names, administrator logins and password rules as the API has them', () => {
  assert.equal(v.serverNameProblem('orders-eu-1'), null);
  for (const bad of ['ab', '-orders', 'orders-', 'Orders', 'a_b', 'x'.repeat(64)]) assert.ok(v.serverNameProblem(bad), bad);
  assert.equal(v.loginProblem('orderadmin'), null);
  assert.match(v.loginProblem('ADMIN')!, /reserved name/);
  assert.match(v.loginProblem('pg_monitor')!, /pg_ are reserved/);
  assert.match(v.loginProblem('pgwarden_x')!, /reserved by the platform/);
  assert.match(v.loginProblem('9lives')!, /start with a letter/);
  const met = (p: string) => v.passwordRules(p).map((r) => r.met);
  assert.deepEqual(met('short'), [false, false]);
  assert.deepEqual(met('alllowercase'), [true, false]);
  assert.deepEqual(met('Lower-and-UPPER'), [true, true]);
  assert.deepEqual(met('Abcdefg1'), [true, true]);
  assert.deepEqual(met(`Aa1${'x'.repeat(126)}`), [false, true]);
});

test('IPv4 and IPv6 addresses and ranges', () => {
  for (const ok4 of ['127.0.0.1', '0.0.0.0', '255.255.255.255']) assert.equal(v.ipFamily(ok4), 4, ok4);
  for (const ok6 of ['::1', '::', '2001:db8::1', '2001:DB8:0:0:0:0:0:1', 'fe80::1:2:3:4', '::ffff:192.0.2.1']) assert.equal(v.ipFamily(ok6), 6, ok6);
  for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', '1:2:3:4:5:6:7:8:9', '2001:db8:::1', '1::2::3', 'g::1', 'localhost', ''])
    assert.equal(v.ipFamily(bad), null, bad);
  assert.equal(v.rangeProblem('10.0.0.1', '10.0.0.255'), null);
  assert.match(v.rangeProblem('10.0.0.9', '10.0.0.1')!, /must not be greater/);
  assert.match(v.rangeProblem('10.0.0.1', '::1')!, /same family/);
  assert.match(v.rangeProblem('10.0.0.300', '10.0.0.1')!, /not an IPv4 or IPv6 address/);
});
