// Step 8 without a server: the refusals that come before any server is contacted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate, poolGreeting, type LoginStart } from '../../../src/gateway/login.js';
import { Wire } from '../../../src/gateway/wire.js';
import { parameterStatus, saslInitialResponse, saslResponse } from '../../../src/pgwire/index.js';
import type { GatewayContext } from '../../../src/gateway/context.js';
import type { Facts } from '../../../src/gateway/report.js';
import type { VerifierLookup } from '../../../src/gateway/verifier-cache.js';
import type { TlsState } from '../../../src/gateway/handshake/transport.js';
import { admission, server } from './checks/facts.js';
import { duplexPair, readBytes } from './handshake/duplex-pair.js';

function gateway(identity: ReadonlyMap<string, unknown> = new Map(), lookup: VerifierLookup = { kind: 'unknown-role' }) {
  const failed: string[] = [];
  const g = {
    limits: { authTimeoutMs: 5_000 },
    snapshot: () => ({ identity }),
    verifiers: { get: async () => lookup, loginFailed: (id: number, user: string) => failed.push(`${id}/${user}`) },
    mockSecret: Buffer.alloc(32, 7),
  } as unknown as GatewayContext;
  return { g, failed };
}

function start(tls: boolean) {
  const [client, serverSide] = duplexPair();
  const s: LoginStart = {
    socket: serverSide,
    wire: new Wire(serverSide, 'message'),
    tls: tls ? ({ channelBinding: null } as TlsState) : null,
    protocolMinor: 0,
  };
  return { client, s };
}

const facts = (): Facts => ({ conn: { connId: 'c', clientAddress: '203.0.113.7', clientPort: 1, listener: 'public' }, ssl: false });

test('password authentication disabled: refused before any exchange', async () => {
  const { g } = gateway();
  const { s } = start(true);
  const v = await authenticate(g, s, admission({ server: server({ passwordAuth: 'Disabled' }) }), facts());
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28000', message: 'Password authentication is disabled for this server. Sign in with an access token.' });
  assert.equal(v.reason, 'password-auth-disabled');
  assert.equal(v.event, undefined);
});

test("a principal's role over plaintext: the token error, auth.failed with method token", async () => {
  const principals = new Map([['alice', { objectId: 'oid', type: 'user' }]]);
  const { g } = gateway(new Map([['demo', { admin: null, principals }]]));
  const { s } = start(false);
  const v = await authenticate(g, s, admission(), facts());
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28000', message: 'An error occurred while validating the access token. Please acquire a new token and retry.' });
  assert.equal(v.reason, 'token over a plaintext connection');
  assert.equal(v.event, 'auth.failed');
  assert.equal(v.method, 'token');
});

test('an unknown role: a mock SCRAM exchange, then the wrong-password error; the failure is recorded', async () => {
  const { g, failed } = gateway();
  const { client, s } = start(false);
  const verdict = authenticate(g, s, admission({ user: 'nobody' }), facts());
  const offer = await readBytes(client, 1);
  assert.match(offer.toString('latin1'), /SCRAM-SHA-256/);
  client.write(saslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=clientnonce0123456789')));
  const cont = await readBytes(client, 9);
  const serverFirst = cont.subarray(9).toString();
  const nonce = /r=([^,]+)/.exec(serverFirst)![1]!;
  client.write(saslResponse(Buffer.from(`c=biws,r=${nonce},p=${Buffer.alloc(32).toString('base64')}`)));
  const v = await verdict;
  assert.ok(!v.ok);
  assert.deepEqual(v.error, { sqlstate: '28P01', message: 'password authentication failed for user "nobody"' });
  assert.equal(v.reason, 'role does not exist');
  assert.equal(v.event, 'auth.failed');
  assert.deepEqual(failed, ['1/nobody']);
});

test('pool greeting: the parameters in order, application_name the client’s (in its place, else last), the same bytes as message by message', () => {
  const params = new Map([
    ['server_version', '15.20'],
    ['application_name', 'pgbench'],
    ['TimeZone', 'UTC'],
  ]);
  const byMessage = (entries: [string, string][]) => Buffer.concat(entries.map(([n, v]) => parameterStatus(n, v)));
  const expected = byMessage([
    ['server_version', '15.20'],
    ['application_name', 'psql'],
    ['TimeZone', 'UTC'],
  ]);
  assert.deepEqual(poolGreeting(params, 'psql'), expected);
  assert.deepEqual(poolGreeting(params, 'psql'), expected, 'again, from the cache');
  assert.deepEqual(poolGreeting(params, ''), byMessage([...new Map(params).set('application_name', '')]));
  // No application_name among the parameters: the client's comes last.
  const without = new Map([['server_version', '15.20']]);
  assert.deepEqual(
    poolGreeting(without, 'app'),
    byMessage([
      ['server_version', '15.20'],
      ['application_name', 'app'],
    ]),
  );
  // A parameter changed in place (a ParameterStatus read at a reset): a new greeting, not the cached one.
  params.set('TimeZone', 'Europe/Paris');
  assert.deepEqual(
    poolGreeting(params, 'psql'),
    byMessage([
      ['server_version', '15.20'],
      ['application_name', 'psql'],
      ['TimeZone', 'Europe/Paris'],
    ]),
  );
  // Values that would run together without a separator stay apart.
  assert.notDeepEqual(poolGreeting(new Map([['a', 'bc']]), 'x'), poolGreeting(new Map([['ab', 'c']]), 'x'));
  assert.equal(params.get('application_name'), 'pgbench', "the pool's parameters are not changed");
});
