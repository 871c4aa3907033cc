// The handshake over an in-memory duplex pair: no TCP. What a client sends before its
// StartupMessage, and what the handshake makes of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { handshake, normalizeAddress, type HandshakeEnv, type HandshakeResult } from '../../../../src/gateway/handshake/handshake.js';
import { parseTrustedCidrs } from '../../../../src/gateway/proxy-stage.js';
import { cancelRequest, sslRequest, startupMessage } from '../../../../src/pgwire/index.js';
import { GSSENC_REQUEST_CODE } from '../../../../src/pgwire/codes.js';
import type { ListenerSpec } from '../../../../src/gateway/context.js';
import type { ActiveCertificate } from '../../../../src/gateway/tls-certificates.js';
import type { ConnectionContext } from '../../../../src/events/types.js';
import { makeCertificate } from '../../auth/scram/certificates.js';
import { duplexPair, readBytes } from './duplex-pair.js';

const PUBLIC: ListenerSpec = { kind: 'public', host: '127.0.0.1', port: 5432 };

function env(over: { timeoutMs?: number; certificate?: ActiveCertificate } = {}): HandshakeEnv & { seen: ConnectionContext[] } {
  const seen: ConnectionContext[] = [];
  const current = over.certificate ?? ({} as ActiveCertificate);
  return {
    seen,
    limits: { handshakeTimeoutMs: over.timeoutMs ?? 5_000, maxStartupPacket: 10_000 },
    certificates: { current, forHost: async () => current },
    serverNames: () => ['demo'],
    log: { error: () => undefined },
    accepted: (conn) => seen.push(conn),
  };
}

function run(
  send: Buffer[],
  opts: { listener?: ListenerSpec; peer?: string; env?: ReturnType<typeof env> } = {},
): { result: Promise<HandshakeResult>; client: Duplex; e: ReturnType<typeof env> } {
  const [client, server] = duplexPair();
  const e = opts.env ?? env();
  const result = handshake(server, { address: opts.peer ?? '::ffff:192.0.2.10', port: 40000 }, opts.listener ?? PUBLIC, e);
  for (const b of send) client.write(b);
  return { result, client, e };
}

function startupWithVersion(minor: number, params: Record<string, string>): Buffer {
  const b = startupMessage(params);
  b.writeInt32BE((3 << 16) | minor, 4);
  return b;
}

function code(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(n, 4);
  return b;
}

test('a StartupMessage: startup, the client address as IPv4, protocol 3.0, nothing written back', async () => {
  const { result, e } = run([startupMessage({ user: 'alice@demo', database: 'app' })]);
  const r = await result;
  assert.equal(r.kind, 'startup');
  if (r.kind !== 'startup') return;
  r.stopDeadline();
  assert.deepEqual(
    [...r.params],
    [
      ['user', 'alice@demo'],
      ['database', 'app'],
    ],
  );
  assert.equal(r.protocolMinor, 0);
  assert.equal(r.tls, null);
  assert.equal(r.clientAddress, '192.0.2.10');
  assert.equal(r.endpoint, null);
  assert.deepEqual(e.seen, [r.conn]);
  assert.equal(r.conn.listener, 'public');
  assert.equal(r.conn.clientPort, 40000);
  assert.equal(normalizeAddress('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(normalizeAddress('2001:db8::1'), '2001:db8::1');
});

test('protocol 3.2 is taken; a newer minor and _pq_ options get NegotiateProtocolVersion', async () => {
  const r32 = await run([startupWithVersion(2, { user: 'a' })]).result;
  assert.ok(r32.kind === 'startup');
  r32.stopDeadline();
  assert.equal(r32.protocolMinor, 2);

  const { result, client } = run([startupWithVersion(7, { user: 'a', '_pq_.compression': 'on' })]);
  const r = await result;
  assert.ok(r.kind === 'startup');
  r.stopDeadline();
  assert.equal(r.protocolMinor, 2);
  assert.equal(r.params.has('_pq_.compression'), false);
  const answer = await readBytes(client, 1);
  assert.equal(String.fromCharCode(answer[0]!), 'v');
  assert.equal(answer.readInt32BE(5), (3 << 16) | 2);
  assert.equal(answer.readInt32BE(9), 1);
  assert.equal(answer.subarray(13, answer.length - 1).toString(), '_pq_.compression');
});

test('GSSENCRequest is answered N once; a second one is refused as PostgreSQL does', async () => {
  const { result, client } = run([code(GSSENC_REQUEST_CODE)]);
  assert.equal((await readBytes(client, 1)).toString(), 'N');
  client.write(startupMessage({ user: 'a' }));
  const ok = await result;
  assert.ok(ok.kind === 'startup');
  ok.stopDeadline();

  const twice = await run([Buffer.concat([code(GSSENC_REQUEST_CODE), code(GSSENC_REQUEST_CODE)])]).result;
  assert.ok(twice.kind === 'refused' && twice.refusal && twice.accepted);
  assert.deepEqual(twice.refusal.error, { sqlstate: '0A000', message: 'unsupported frontend protocol 1234.5680: server supports 3.0 to 3.2' });
  assert.equal(twice.refusal.reason, 'protocol-violation');
});

test('CancelRequest: the key, for the caller to forward', async () => {
  const r = await run([cancelRequest(4242, Buffer.from([1, 2, 3, 4]))]).result;
  assert.deepEqual(r, { kind: 'cancel', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) });
});

test('an impossible startup length: refused silently, recorded as invalid-startup-length', async () => {
  const r = await run([Buffer.from([0x58, 0, 0, 0, 4])]).result; // a Terminate before anything
  assert.ok(r.kind === 'refused' && r.refusal && r.conn);
  assert.equal(r.refusal.reason, 'invalid-startup-length');
  assert.equal(r.refusal.silent, true);
  assert.deepEqual(r.refusal.error, { sqlstate: '08P01', message: 'invalid length of startup packet' });
});

test('bytes after SSLRequest before the TLS handshake: refused (CVE-2021-23214)', async () => {
  const r = await run([Buffer.concat([sslRequest(), startupMessage({ user: 'a' })])]).result;
  assert.ok(r.kind === 'refused' && r.refusal);
  assert.deepEqual(r.refusal.error, { sqlstate: '08P01', message: 'received unencrypted data after SSL request' });
  assert.equal(r.refusal.reason, 'protocol-violation');
});

test('the handshake timeout closes a connection that sends nothing', async () => {
  const started = Date.now();
  const r = await run([], { env: env({ timeoutMs: 50 }) }).result;
  assert.deepEqual(
    { kind: r.kind, conn: r.kind === 'refused' ? r.conn : undefined, refusal: r.kind === 'refused' ? r.refusal : undefined },
    { kind: 'refused', conn: null, refusal: null },
  );
  assert.ok(Date.now() - started >= 45);
});

test('PROXY: refused from an untrusted address, taken from a load balancer', async () => {
  const listener: ListenerSpec = { kind: 'private-link', host: '0.0.0.0', port: 5433, proxy: parseTrustedCidrs(['10.0.0.0/8']) };
  const untrusted = await run([Buffer.from('PROXY TCP4 198.51.100.9 10.0.0.1 51000 5432\r\n')], { listener, peer: '192.0.2.1' }).result;
  assert.ok(untrusted.kind === 'refused' && untrusted.refusal && untrusted.conn);
  assert.equal(untrusted.accepted, false);
  assert.equal(untrusted.refusal.reason, 'proxy-untrusted-source');
  assert.equal(untrusted.refusal.error.sqlstate, '08P01');
  assert.equal(untrusted.conn.clientAddress, '192.0.2.1');

  const { result, e } = run([Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.9 10.0.0.1 51000 5432\r\n'), startupMessage({ user: 'a' })])], {
    listener,
    peer: '10.0.0.5',
  });
  const r = await result;
  assert.ok(r.kind === 'startup');
  r.stopDeadline();
  assert.equal(r.clientAddress, '198.51.100.9');
  assert.equal(r.conn.clientPort, 51000);
  assert.equal(e.seen.length, 1);

  const local = await run([Buffer.from('PROXY UNKNOWN\r\n')], { listener, peer: '10.0.0.5' }).result;
  assert.ok(local.kind === 'refused' && local.refusal);
  assert.equal(local.refusal.reason, 'proxy-no-client-address');
});

test('TLS: SSLRequest then the handshake, and PostgreSQL 17 direct TLS with ALPN', async () => {
  const cert = await makeCertificate('ecdsa-p256-sha256', 'demo.pgwarden.localhost');
  const certificate = {
    context: tls.createSecureContext({ cert: cert.certPem, key: cert.keyPem }),
    der: cert.der,
    channelBinding: null,
    pem: cert.certPem,
    keyPem: cert.keyPem,
    names: new Set<string>(),
  };
  const connectTls = (socket: Duplex, alpn?: string[]) =>
    tls.connect({ socket, servername: 'demo.pgwarden.localhost', rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: alpn } : {}) });

  const viaRequest = run([sslRequest()], { env: env({ certificate }) });
  assert.equal((await readBytes(viaRequest.client, 1)).toString(), 'S');
  const secure = connectTls(viaRequest.client);
  secure.write(startupMessage({ user: 'a' }));
  const r = await viaRequest.result;
  assert.ok(r.kind === 'startup' && r.tls);
  r.stopDeadline();
  assert.equal(r.tls.version, 'TLSv1.3');
  assert.equal(r.tls.sni, 'demo.pgwarden.localhost');
  secure.destroy();

  const [client, server] = duplexPair();
  const e = env({ certificate });
  const direct = handshake(server, { address: '127.0.0.1', port: 1 }, PUBLIC, e);
  const d = connectTls(client, ['postgresql']);
  d.write(startupMessage({ user: 'b' }));
  const dr = await direct;
  assert.ok(dr.kind === 'startup' && dr.tls);
  dr.stopDeadline();
  assert.equal(dr.params.get('user'), 'b');
  d.destroy();

  const [client2, server2] = duplexPair();
  const noAlpn = handshake(server2, { address: '127.0.0.1', port: 1 }, PUBLIC, env({ certificate }));
  const n = connectTls(client2);
  n.on('error', () => undefined);
  const nr = await noAlpn;
  assert.ok(nr.kind === 'refused' && nr.refusal === null, 'direct TLS without ALPN "postgresql" is closed');
});
