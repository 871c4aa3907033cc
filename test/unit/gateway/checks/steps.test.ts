// The ordered list: steps 3–7 of SPEC.md §3 in order, the first refusal wins, guards held until
// handed over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECKS, runChecks } from '../../../../src/gateway/checks/steps.js';
import { HeldGuards } from '../../../../src/gateway/checks/verdict.js';
import type { RouteFacts } from '../../../../src/gateway/checks/step-3-route.js';
import { env, server } from './facts.js';

function facts(user = 'alice@demo', over: Partial<RouteFacts> = {}): RouteFacts {
  return {
    sni: undefined,
    params: new Map([
      ['user', user],
      ['database', 'app'],
    ]),
    domain: 'pgwarden.localhost',
    servers: new Map([['demo', server()]]),
    clientAddress: '203.0.113.7',
    listener: { kind: 'public' },
    endpoint: null,
    tlsVersion: 'TLSv1.3',
    ...over,
  };
}

test('the list is numbered as SPEC.md §3, in the order the gateway has always checked', () => {
  assert.deepEqual(
    CHECKS.map((c) => `${c.step} ${c.name}`),
    ['4 audit-accepting', '4 server-state', '5 network', '6 tls-policy', '7 startup-parameters', '7 throttle', '7 connection-limit'],
  );
});

test('all pass: the admission, and the connection slot held until handed over', () => {
  const e = env({ maxPerServer: 1 });
  const held = new HeldGuards();
  const out = runChecks(facts(), e, held);
  assert.ok(out.ok);
  assert.equal(out.admission.user, 'alice');
  assert.ok(!runChecks(facts(), e, new HeldGuards()).ok, 'the one slot is taken');
  const release = held.handOver();
  held.releaseAll(); // handed over: nothing left to release here
  assert.ok(!runChecks(facts(), e, new HeldGuards()).ok);
  release();
  assert.ok(runChecks(facts(), e, new HeldGuards()).ok);
});

test('the first refusal wins and later checks do not run', () => {
  const e = env({ maxPerServer: 1 });
  e.auditAccepts = false;
  const held = new HeldGuards();
  // Audit, state, network and TLS all refuse: the audit comes first.
  const out = runChecks(
    facts('alice@demo', { servers: new Map([['demo', server({ state: 'Stopped' })]]), clientAddress: '198.51.100.1', tlsVersion: null }),
    e,
    held,
  );
  assert.ok(!out.ok);
  assert.equal(out.refusal.reason, 'audit-unavailable');
  assert.equal(out.admission?.server.name, 'demo');
  held.releaseAll();
  e.auditAccepts = true;
  e.blocked.add('demo/203.0.113.7');
  const throttled = runChecks(
    facts('alice@demo', {
      params: new Map([
        ['user', 'alice@demo'],
        ['replication', 'true'],
      ]),
    }),
    e,
    held,
  );
  assert.ok(!throttled.ok);
  assert.equal(throttled.refusal.reason, 'replication-refused', 'startup parameters before throttling');
  const blocked = runChecks(facts(), e, held);
  assert.ok(!blocked.ok);
  assert.equal(blocked.refusal.reason, 'throttled');
  e.blocked.clear();
  assert.ok(runChecks(facts(), e, held).ok, 'a throttled connection took no slot');
});

test('an unknown server: refused at step 3, no admission', () => {
  const out = runChecks(facts('alice@nowhere'), env(), new HeldGuards());
  assert.ok(!out.ok);
  assert.equal(out.admission, null);
  assert.equal(out.refusal.reason, 'unknown-server');
});

test('a refusal after the slot was taken leaves it with the connection, released with it', () => {
  const e = env({ maxPerServer: 1 });
  const refuseLast = [
    ...CHECKS,
    { step: 7 as const, name: 'refuse', run: () => ({ ok: false as const, error: { sqlstate: 'XX000', message: 'x' }, reason: 'x' }) },
  ];
  const held = new HeldGuards();
  assert.ok(!runChecks(facts(), e, held, refuseLast).ok);
  assert.ok(!runChecks(facts(), e, new HeldGuards()).ok, 'still held');
  held.releaseAll();
  assert.ok(runChecks(facts(), e, new HeldGuards()).ok);
});
