// W8: replication connections and the platform's own application_name values are refused
// before authentication, whichever way the client spells them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applicationNames, judgeStartupParams } from '../../../src/gateway/startup-policy.js';

const judge = (p: Record<string, string>) => judgeStartupParams(new Map(Object.entries({ user: 'alice', ...p })));
const reason = (p: Record<string, string>) => {
  const v = judge(p);
  return v.ok ? null : v.reason;
};

test('replication: every spelling that asks for it is refused, the spellings of false are not', () => {
  for (const value of ['true', 'on', 'yes', '1', 'database', 'TRUE', 'Database', 't', 'y', 'garbage', '', ' false']) {
    assert.equal(reason({ replication: value }), 'replication-refused', value);
  }
  for (const value of ['false', 'off', 'no', '0', 'f', 'n', 'of', 'FALSE', 'Off']) assert.equal(reason({ replication: value }), null, value);
  const v = judge({ replication: 'true' });
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28000', message: 'replication connections are not supported through the gateway' });
});

test('application_name: the parameter and every form of options', () => {
  for (const name of ['pgwarden', 'pgwarden-maintenance', 'PGWARDEN-backup', '  pgwarden-change-feed', 'pgwarden\u0000x']) {
    assert.equal(reason({ application_name: name }), 'reserved-application-name', JSON.stringify(name));
  }
  for (const options of [
    '-c application_name=pgwarden-maintenance',
    '-capplication_name=pgwarden',
    '--application_name=pgwarden-backup',
    '--application-name=pgwarden',
    '-c APPLICATION_NAME=pgwarden',
    '-c statement_timeout=0 -c application_name=pgwarden',
    '-ec application_name=pgwarden',
    '-c application_name=pg\\warden',
    '-c application_name=\\ pgwarden',
  ]) {
    assert.equal(reason({ options }), 'reserved-application-name', options);
  }
  const v = judge({ application_name: 'pgwarden-maintenance' });
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '42939', message: `application_name "pgwarden-maintenance" is reserved for the platform's own sessions` });
});

test("a client's own names pass", () => {
  for (const name of ['psql', 'billing-app', 'my-pgwarden-client', 'warden', '']) assert.equal(reason({ application_name: name }), null, name);
  assert.equal(reason({ options: '-c search_path=app -c application_name=billing' }), null);
  assert.deepEqual(
    applicationNames(
      new Map([
        ['application_name', 'a'],
        ['options', '-c application_name=b --application-name=c'],
      ]),
    ),
    ['a', 'b', 'c'],
  );
});
