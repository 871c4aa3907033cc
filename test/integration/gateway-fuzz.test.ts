// Untrusted bytes at the gateway's door: random and mutated startup packets, SSL requests and
// SASL messages (fast-check). Each connection gets a FATAL ErrorResponse or a close, the gateway
// keeps serving, and its memory stays bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import net from 'node:net';
import { allowLoopback, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql, rawExchange, startupPacket, gatewayPort } from '../helpers/clients.js';

let t: TestPlatform;
const PASSWORD = 'Fuzz-Passw0rd!';

before(async () => {
  t = await startTestPlatform({ gatewayLimits: { handshakeTimeoutMs: 1000, authTimeoutMs: 1000 } });
  const r = await t.cli(['server', 'create', 'fz1', '--admin-user', 'alice', '--admin-password', PASSWORD, '--ssl-enforcement', 'Disabled']);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, 'fz1');
  // Hundreds of malformed SCRAM exchanges from 127.0.0.1 are failed logins: the automatic
  // protection would (rightly) throttle the address. This file tests parsing, not throttling.
  const off = await t.cli(['server', 'threat-protection', 'update', '--server', 'fz1', '--auto-protection', 'Disabled']);
  assert.equal(off.code, 0, off.stderr);
});
after(async () => {
  await t?.stop();
});

/** A TLS fatal alert record (content type 21, TLS 1.x, 2 bytes: level 2, description). */
function isTlsAlert(data: Buffer): boolean {
  return data.length === 7 && data[0] === 21 && data[1] === 3 && data.readUInt16BE(3) === 2 && data[5] === 2;
}

/** The answer is nothing, single-byte SSL/GSS answers, or ends with a FATAL ErrorResponse; to
 * bytes that start like a TLS record (direct TLS), a TLS fatal alert is a refusal too (rustls,
 * the native relay's TLS, sends one for a malformed record; Node's waits for the whole header). */
function judge(data: Buffer, payload?: Buffer): void {
  if (payload?.[0] === 0x16 && isTlsAlert(data)) return;
  let i = 0;
  while (i < data.length) {
    const type = String.fromCharCode(data[i]!);
    if ((type === 'N' || type === 'S') && i === 0 && (data.length === 1 || data[1] !== 0)) {
      i += 1;
      continue;
    }
    assert.ok(i + 5 <= data.length, `truncated answer ${data.toString('hex')}`);
    const len = data.readInt32BE(i + 1);
    assert.ok(['E', 'R', 'v'].includes(type), `unexpected message ${type}`);
    if (type === 'E') {
      const body = data.subarray(i + 5, i + 1 + len).toString('utf8');
      assert.match(body, /^SFATAL\0/);
      assert.equal(i + 1 + len, data.length, 'the FATAL error is the last thing sent');
    }
    i += 1 + len;
  }
}

function validStartup(): Buffer {
  return startupPacket({ user: 'alice@fz1', database: 'postgres', application_name: 'fuzz' });
}

test('random and mutated startup packets get a FATAL or a close; the gateway keeps serving', async () => {
  const before = process.memoryUsage().rss;
  const mutated = fc.tuple(fc.nat(200), fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.nat(200)).map(([at, bytes, cut]) => {
    const p = Buffer.from(validStartup());
    for (let k = 0; k < bytes.length; k++) p[(at + k) % p.length] = bytes[k]!;
    return p.subarray(0, Math.max(1, p.length - (cut % p.length)));
  });
  const lengthLies = fc.tuple(fc.integer({ min: -10, max: 100_000 }), fc.uint8Array({ maxLength: 64 })).map(([len, rest]) => {
    const b = Buffer.alloc(8 + rest.length);
    b.writeInt32BE(len, 0);
    b.writeInt32BE(196608, 4);
    Buffer.from(rest).copy(b, 8);
    return b;
  });
  const sslThenGarbage = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((g) => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(80877103, 4);
    return Buffer.concat([b, Buffer.from(g)]); // bytes before the TLS handshake: refused
  });
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
        mutated,
        lengthLies,
        sslThenGarbage,
      ),
      async (payload) => {
        const r = await rawExchange(gatewayPort(t), payload, { halfClose: true, timeoutMs: 5000 });
        assert.equal(r.closed, true, `no close for ${payload.toString('hex')}`);
        judge(r.data, payload);
      },
    ),
    { numRuns: 400 },
  );
  const ok = await psql(conninfo(t, { user: 'alice@fz1', sslmode: 'require' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(ok.stdout, '1', ok.stderr);
  const grown = (process.memoryUsage().rss - before) / 1024 / 1024;
  assert.ok(grown < 150, `rss grew ${grown.toFixed(0)} MiB`);
});

test('a client that says nothing, or stops half-way, is closed at the handshake deadline', async () => {
  const silent = await rawExchange(gatewayPort(t), Buffer.alloc(0), { timeoutMs: 5000 });
  assert.equal(silent.closed, true);
  const half = await rawExchange(gatewayPort(t), validStartup().subarray(0, 10), { timeoutMs: 5000 });
  assert.equal(half.closed, true);
});

test('an oversized startup packet is refused without being buffered', async () => {
  const big = Buffer.alloc(200_000, 0x61);
  big.writeInt32BE(200_000, 0);
  big.writeInt32BE(196608, 4);
  const r = await rawExchange(gatewayPort(t), big, { timeoutMs: 5000 });
  assert.equal(r.closed, true);
  judge(r.data);
  // As PostgreSQL's ProcessStartupPacket: an out-of-bounds length is logged and closed without a word.
  assert.equal(r.data.length, 0);
});

test('malformed SASL messages after a valid startup get a FATAL or a close', async () => {
  const saslMessage = fc
    .tuple(fc.constantFrom(0x70, 0x70, 0x70, 0x51, 0x58, 0x00), fc.uint8Array({ maxLength: 200 }), fc.boolean())
    .map(([type, body, lie]) => {
      const b = Buffer.alloc(5 + body.length);
      b[0] = type;
      b.writeInt32BE(lie ? 0x7fffffff : 4 + body.length, 1);
      Buffer.from(body).copy(b, 5);
      return b;
    });
  const scramInitial = fc.string({ maxLength: 120 }).map((s) => {
    const mech = Buffer.from('SCRAM-SHA-256\0');
    const data = Buffer.from(s);
    const b = Buffer.alloc(5 + mech.length + 4 + data.length);
    b[0] = 0x70;
    b.writeInt32BE(4 + mech.length + 4 + data.length, 1);
    mech.copy(b, 5);
    b.writeInt32BE(data.length, 5 + mech.length);
    data.copy(b, 9 + mech.length);
    return b;
  });
  await fc.assert(
    fc.asyncProperty(fc.oneof(saslMessage, scramInitial), async (msg) => {
      const r = await rawExchange(gatewayPort(t), Buffer.concat([validStartup(), msg]), { halfClose: true, timeoutMs: 5000 });
      assert.equal(r.closed, true);
      judge(r.data);
    }),
    { numRuns: 300 },
  );
});

test('many half-open connections at once do not stop the gateway', async () => {
  // From another loopback address: one address over its pre-auth cap (100) is refused, and
  // everyone else, psql from 127.0.0.1 here, is served meanwhile.
  let refused = 0;
  const sockets = await Promise.all(
    Array.from(
      { length: 300 },
      () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port: gatewayPort(t), localAddress: '127.0.0.2' }, () => resolve(s));
          s.on('error', () => undefined);
          s.once('data', (d: Buffer) => {
            if (d.includes('sorry, too many clients already')) refused++;
          });
        }),
    ),
  );
  // The 200 over the per-address cap get 53300 at once; the 100 admitted are held open, half-way,
  // until the file's 1 s handshake deadline. psql from another address is served meanwhile (on
  // a loaded machine, once the burst of refusals is through).
  await until('the connections over the cap to be refused', async () => refused >= 200, 15_000, 20);
  assert.equal(refused, 200, 'exactly the connections over the per-address cap are refused');
  const ok = await psql(conninfo(t, { user: 'alice@fz1', sslmode: 'require' }), PASSWORD, ['-c', 'select 2']);
  assert.equal(ok.stdout, '2', ok.stderr);
  for (const s of sockets) s.destroy();
});
