// W1: connections that have not authenticated are capped (per address, per /64 for IPv6, and
// in all), idle ones are closed when their first byte does not come, and every refusal is
// counted in /metrics and summed up in the audit log (one event per interval, not one per
// socket). The caps are set low through the platform's gateway limits so the counts stay small.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { auditEvents, allowLoopback, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { boundStream, conninfo, errorIn, psql, tryConnect } from '../helpers/clients.js';

let t: TestPlatform;
const PASSWORD = 'Pre4uth-Passw0rd!';
const SERVER = 'pre1';
const PER_ADDRESS = 4;
const GLOBAL = 10;
const open: net.Socket[] = [];

before(async () => {
  t = await startTestPlatform({
    gatewayLimits: {
      maxPreauthConnections: GLOBAL,
      maxPreauthPerAddress: PER_ADDRESS,
      firstByteTimeoutMs: 1000,
      preauthReportIntervalMs: 200,
      // The held sockets below send one byte and stall: only the caps may end them.
      handshakeTimeoutMs: 120_000,
    },
  });
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  await t.api('PUT', `/servers/${SERVER}/firewallRules/other-loopback`, { startIpAddress: '127.0.0.3', endIpAddress: '127.0.0.3' });
  await until('the rule in the gateway snapshot', async () => t.platform.snapshots.snapshot.network.servers.get(SERVER)?.firewall.match('127.0.0.3'), 5000, 20);
});
after(async () => {
  for (const s of open) s.destroy();
  await t?.stop();
});

/** A connection from `from` that sent `first` (nothing when empty): what it received, and
 * whether the gateway closed it within `waitMs`. */
function hold(from: string, first: Buffer, waitMs = 4000): { socket: net.Socket; outcome: Promise<{ data: Buffer; closed: boolean }> } {
  const socket = net.connect({ host: '127.0.0.1', port: t.platform.gateway.port, localAddress: from });
  open.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  socket.on('connect', () => {
    if (first.length) socket.write(first);
  });
  const outcome = new Promise<{ data: Buffer; closed: boolean }>((resolve) => {
    const timer = setTimeout(() => resolve({ data: Buffer.concat(chunks), closed: false }), waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
  return { socket, outcome };
}

/** The first four bytes of a StartupMessage (its length), and then nothing: a stalled handshake. */
const STALLED = Buffer.from([0, 0, 0, 40]);

async function held(from: string, n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const { socket } = hold(from, STALLED);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    out.push(socket);
  }
  // The gateway has taken them in once its pre-auth gauge counts them (a gateway without the
  // gauge, as before W1, is not waited for).
  await until(
    'the held sockets counted',
    async () => {
      const g = await preauthGauge();
      return g === -1 || g >= n;
    },
    5000,
    20,
  );
  return out;
}

async function metrics(): Promise<string> {
  return t.api<string>('GET', '/metrics');
}
async function preauthGauge(): Promise<number> {
  const m = /^pgwarden_gateway_preauth_connections (\d+)/m.exec(await metrics());
  return m ? Number(m[1]) : -1;
}
const refusedCount = (text: string, reason: string) =>
  Number(new RegExp(`^pgwarden_gateway_preauth_refused_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);

function userClient(from: string): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port: t.platform.gateway.port,
    user: `alice@${SERVER}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { ca: readFileSync(t.platform.paths.caCert, 'utf8'), servername: `${SERVER}.pgwarden.localhost` },
    stream: boundStream(from),
  });
}

test('one address over its cap is refused with 53300; psql from another address still connects and queries', async () => {
  const flood = await held('127.0.0.2', PER_ADDRESS);
  const over = hold('127.0.0.2', Buffer.alloc(0));
  const { data, closed } = await over.outcome;
  assert.equal(closed, true, 'the connection over the per-address cap is closed');
  assert.deepEqual(errorIn(data), { sqlstate: '53300', message: 'sorry, too many clients already' });

  // Everyone else is served meanwhile: psql (libpq) from 127.0.0.1, node-postgres from 127.0.0.3.
  const r = await psql(conninfo(t, { user: `alice@${SERVER}`, sslmode: 'require' }), PASSWORD, ['-c', 'select 40 + 2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '42');
  assert.equal(await tryConnect(userClient('127.0.0.3')), true);
  // The flooding sockets are still open: only the one over the cap was refused.
  assert.equal(
    flood.every((s) => !s.destroyed),
    true,
  );

  assert.equal(refusedCount(await metrics(), 'per-address'), 1);
  const summary = await until(
    'the refusal summary in the audit log',
    async () => auditEvents(t).find((e) => e.type === 'gateway.preauth_refused' && (e.reasons as Record<string, number>)['per-address'] === 1),
    10_000,
    50,
  );
  assert.deepEqual(summary.addresses, [{ address: '127.0.0.2', refused: 1 }]);
  assert.equal(summary.refused, 1);
  for (const s of flood) s.destroy();
  await until('the flood released', async () => (await preauthGauge()) === 0, 5000, 20);
});

test('IPv6 is capped per /64: ::1 takes the slots of its prefix', async () => {
  // ::1 is counted as its /64 (::/64): every address of that prefix shares these slots.
  const flood: net.Socket[] = [];
  for (let i = 0; i < PER_ADDRESS; i++) {
    const s = net.connect({ host: '::1', port: t.platform.gateway.port });
    open.push(s);
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write(STALLED);
    flood.push(s);
  }
  await until(
    'the v6 sockets counted',
    async () => {
      const g = await preauthGauge();
      return g === -1 || g >= PER_ADDRESS;
    },
    5000,
    20,
  );
  const over = await new Promise<Buffer | null>((resolve) => {
    const s = net.connect({ host: '::1', port: t.platform.gateway.port });
    open.push(s);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => resolve(null), 4000); // still open: not refused
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
  assert.ok(over, 'the connection over the cap of ::/64 is closed');
  assert.deepEqual(errorIn(over), { sqlstate: '53300', message: 'sorry, too many clients already' });
  for (const s of flood) s.destroy();
  await until('the flood released', async () => (await preauthGauge()) === 0, 5000, 20);
});

test('the global cap: many addresses together are refused at the cap, and served again once they go', async () => {
  const flood = [...(await held('127.0.0.4', PER_ADDRESS)), ...(await held('127.0.0.5', PER_ADDRESS)), ...(await held('127.0.0.6', GLOBAL - 2 * PER_ADDRESS))];
  assert.equal(await preauthGauge(), GLOBAL);
  const over = await hold('127.0.0.7', Buffer.alloc(0)).outcome;
  assert.equal(over.closed, true);
  assert.deepEqual(errorIn(over.data), { sqlstate: '53300', message: 'sorry, too many clients already' });
  assert.equal(refusedCount(await metrics(), 'global'), 1);
  for (const s of flood) s.destroy();
  await until('the flood released', async () => (await preauthGauge()) === 0, 5000, 20);
  assert.equal(await tryConnect(userClient('127.0.0.3')), true);
});

test('an idle connection that never sends a byte is closed by the first-byte timeout, and counted', async () => {
  const idle = await hold('127.0.0.8', Buffer.alloc(0), 15_000).outcome;
  assert.equal(idle.closed, true, 'the gateway closed the idle connection');
  assert.equal(idle.data.length, 0);
  assert.equal(refusedCount(await metrics(), 'first-byte-timeout') >= 1, true);
  const summary = await until(
    'the timeout in the audit log',
    async () => auditEvents(t).find((e) => e.type === 'gateway.preauth_refused' && (e.reasons as Record<string, number>)['first-byte-timeout'] >= 1),
    10_000,
    50,
  );
  assert.deepEqual(summary.addresses, [{ address: '127.0.0.8', refused: 1 }]);
});
