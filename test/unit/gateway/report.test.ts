// Refusals are reported in one place: the audit event, the metric and what the client gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { failureRefusal, reportRefusal, type Facts, type ReportEnv } from '../../../src/gateway/report.js';
import { refusal } from '../../../src/gateway/checks/verdict.js';
import { ConnectionClosed } from '../../../src/gateway/wire.js';
import { ProtocolError, parseErrorOrNotice } from '../../../src/pgwire/index.js';
import type { GatewayEvent } from '../../../src/events/types.js';

function recorder() {
  const events: GatewayEvent[] = [];
  const denied: string[] = [];
  const logged: unknown[] = [];
  const env: ReportEnv = {
    bus: { publish: (e) => events.push(e) },
    metrics: { denied: { inc: ({ reason }) => denied.push(reason) } },
    log: { error: (obj) => logged.push(obj) },
  };
  return { env, events, denied, logged };
}

const conn = { connId: 'c1', clientAddress: '203.0.113.7', clientPort: 5000, listener: 'public' as const };

function sent(socket: PassThrough): Buffer {
  return (socket.read() as Buffer | null) ?? Buffer.alloc(0);
}

test('a check refusal: connection.denied with the session fields, counted by reason, FATAL ErrorResponse', () => {
  const r = recorder();
  const socket = new PassThrough();
  const facts: Facts = { conn, ssl: true, server: 'demo', user: 'alice', database: 'app' };
  reportRefusal(r.env, socket, facts, refusal({ sqlstate: '53300', message: 'sorry, too many clients already' }, 'too-many-connections'));
  assert.equal(r.events.length, 1);
  const e = r.events[0]!;
  assert.equal(e.type, 'connection.denied');
  assert.deepEqual(
    { ...e, time: undefined },
    {
      type: 'connection.denied',
      time: undefined,
      connection: conn,
      server: 'demo',
      user: 'alice',
      database: 'app',
      applicationName: undefined,
      reason: 'too-many-connections',
      sqlstate: '53300',
      ssl: true,
    },
  );
  assert.deepEqual(r.denied, ['too-many-connections']);
  const frame = sent(socket);
  assert.equal(String.fromCharCode(frame[0]!), 'E');
  const fields = parseErrorOrNotice(frame.subarray(5));
  assert.equal(fields.sqlstate, '53300');
  assert.equal(fields.message, 'sorry, too many clients already');
  assert.equal(socket.writableEnded, true);
});

test('auth.failed: its method, and one metric label whatever the reason', () => {
  const r = recorder();
  reportRefusal(
    r.env,
    new PassThrough(),
    { conn, ssl: true, user: 'alice', objectId: 'oid-1' },
    refusal({ sqlstate: '28000', message: 'x' }, 'token rejected', { event: 'auth.failed', method: 'token' }),
  );
  const e = r.events[0]!;
  assert.ok(e.type === 'auth.failed');
  assert.equal(e.method, 'token');
  assert.equal(e.reason, 'token rejected');
  assert.equal(e.objectId, 'oid-1');
  assert.deepEqual(r.denied, ['auth-failed']);
});

test("the server's own refusal is passed on as it is and not counted; a silent one sends nothing", () => {
  const r = recorder();
  const socket = new PassThrough();
  const frame = Buffer.from('E\0\0\0\x04');
  reportRefusal(
    r.env,
    socket,
    { conn, ssl: false },
    refusal({ sqlstate: '3D000', message: 'no db' }, 'server refused: no db', { event: 'auth.failed', frame }),
  );
  assert.deepEqual(sent(socket), frame);
  assert.deepEqual(r.denied, []);

  const silent = new PassThrough();
  reportRefusal(
    r.env,
    silent,
    { conn, ssl: false },
    refusal({ sqlstate: '08P01', message: 'PROXY protocol: local-refused' }, 'proxy-local-refused', { silent: true }),
    false,
  );
  assert.equal(silent.destroyed, true);
  const denied = r.events[1]!;
  assert.deepEqual(Object.keys(denied), ['type', 'time', 'connection', 'reason', 'sqlstate', 'ssl'], 'refused before acceptance: no session fields');
});

test('failures: which ones are refusals, and what they say', () => {
  assert.equal(failureRefusal(new ConnectionClosed()), null);
  assert.equal(failureRefusal(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), null);
  const length = failureRefusal(new ProtocolError('08P01', 'invalid length of startup packet'));
  assert.equal(length?.reason, 'invalid-startup-length');
  assert.equal(length?.silent, true);
  assert.deepEqual(failureRefusal(new ProtocolError('08P01', 'bad'))?.error, { sqlstate: '08P01', message: 'bad' });
  const internal = failureRefusal(new TypeError('boom'));
  assert.deepEqual(internal?.error, { sqlstate: 'XX000', message: 'internal error in the gateway' });
  assert.equal(internal?.reason, 'internal-error');
  const r = recorder();
  reportRefusal(r.env, new PassThrough(), { conn, ssl: false }, internal!);
  assert.equal(r.logged.length, 1, 'an internal error is logged');
});
