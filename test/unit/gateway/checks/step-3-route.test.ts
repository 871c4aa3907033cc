// Step 3: the startup names a known server, or the client gets SPEC.md §4's one text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route, type RouteFacts } from '../../../../src/gateway/checks/step-3-route.js';
import { server } from './facts.js';

const UNKNOWN = 'Invalid Username specified. Please check the Username and retry connection. The Username should be in <username@hostname> format.';

function facts(params: Record<string, string>, over: Partial<RouteFacts> = {}): RouteFacts {
  return {
    sni: undefined,
    params: new Map(Object.entries(params)),
    domain: 'pgwarden.localhost',
    servers: new Map([
      ['demo', server()],
      ['other', server({ id: 2, name: 'other' })],
    ]),
    clientAddress: '203.0.113.7',
    listener: { kind: 'public' },
    endpoint: null,
    tlsVersion: null,
    ...over,
  };
}

test('user@server: the routed connection, the suffix stripped, the database defaulting to the role', () => {
  const v = route(facts({ user: 'alice@demo' }));
  assert.ok(v.ok);
  assert.equal(v.admission.server.name, 'demo');
  assert.equal(v.admission.user, 'alice');
  assert.equal(v.admission.database, 'alice');
  assert.deepEqual(
    [...v.admission.forward],
    [
      ['user', 'alice'],
      ['database', 'alice'],
    ],
  );
  assert.equal(v.admission.clientAddress, '203.0.113.7');
});

test('SNI wins over the user suffix; the option form is removed from what is forwarded', () => {
  const sni = route(facts({ user: 'alice@other', database: 'app' }, { sni: 'demo.pgwarden.localhost' }));
  assert.ok(sni.ok);
  assert.equal(sni.admission.server.name, 'demo');
  assert.equal(sni.admission.user, 'alice@other');
  const option = route(facts({ user: 'bob', options: '-c work_mem=4MB server=other' }));
  assert.ok(option.ok);
  assert.equal(option.admission.server.name, 'other');
  assert.equal(option.admission.forward.get('options'), '-c work_mem=4MB');
});

test('no server, or an unknown one: 28000 and the reason unknown-server', () => {
  const cases: Record<string, string>[] = [{ user: 'alice' }, { user: 'alice@nowhere' }, { user: 'alice', server: 'nowhere' }];
  for (const params of cases) {
    const v = route(facts(params));
    assert.ok(!v.ok, JSON.stringify(params));
    assert.deepEqual(v.error, { sqlstate: '28000', message: UNKNOWN });
    assert.equal(v.reason, 'unknown-server');
    assert.equal(v.event, undefined);
  }
});
