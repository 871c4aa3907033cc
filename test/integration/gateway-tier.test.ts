// The gateway tier: the platform's gateway and one `pgwarden gateway` process on the same catalog
// behave as one. A CancelRequest reaching either gateway cancels a query on the other (57014,
// through the catalog's tier channel); failed logins on one block the address on the other with
// the SPEC error, and an unblock through the CLI lifts it on both; `audit verify` checks both
// gateways' streams and `audit search` merges their records by time, each naming its stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { allowLoopback, startGatewayProcess, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { boundStream, gatewayPort, tryConnect } from '../helpers/clients.js';

let t: TestPlatform;
let other: ChildProcess | undefined;
let otherPort: number;
const SERVER = 'tier1';
const ADMIN = 'owner';
const PASSWORD = 'T1er-Admin-Passw0rd!';
const THROTTLED = 'Too many failed login attempts from this address. Try again later.';
/** How the `pgwarden gateway` process's stream is named (the helper starts it on port 0). */
const OTHER_STREAM = 'gw-0';

before(
  async () => {
    t = await startTestPlatform();
    const r = await t.cli(['server', 'create', SERVER, '--admin-user', ADMIN, '--admin-password', PASSWORD]);
    assert.equal(r.code, 0, r.stderr);
    await allowLoopback(t, SERVER);
    const gw = startGatewayProcess(t.dataDir);
    other = gw.child;
    other.stderr?.resume();
    otherPort = await gw.port;
    await until('the other gateway serves the server', async () => (await tryConnect(client(otherPort, ADMIN, PASSWORD))) === true);
    const admin = client(otherPort, ADMIN, PASSWORD);
    await admin.connect();
    for (const role of ['vera', 'tom']) await admin.query(`create role ${role} login password '${role}-Passw0rd!'`);
    await admin.end();
  },
  { timeout: 180_000 },
);
after(async () => {
  if (other && other.exitCode === null) {
    const exited = new Promise((r) => other!.once('exit', r));
    other.kill('SIGTERM');
    await exited;
  }
  await t?.stop();
});

function client(port: number, user: string, password: string, from?: string): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port,
    user: `${user}@${SERVER}`,
    password,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
    ...(from ? { stream: boundStream(from) } : {}),
  });
}

async function cancelThrough(port: number, processId: number, secretKey: number): Promise<void> {
  const s = net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const cancel = Buffer.alloc(16);
  cancel.writeInt32BE(16, 0);
  cancel.writeInt32BE(80877102, 4);
  cancel.writeInt32BE(processId, 8);
  cancel.writeInt32BE(secretKey, 12);
  const closed = new Promise((r) => s.once('close', r));
  s.end(cancel);
  await closed;
}

for (const [sessionOn, cancelOn] of [
  ['the gateway process', 'the platform'],
  ['the platform', 'the gateway process'],
] as const) {
  test(`cancel: a CancelRequest to ${cancelOn} cancels a query on ${sessionOn} (57014)`, { timeout: 60_000 }, async (ctx) => {
    const portOf = (which: string) => (which === 'the platform' ? gatewayPort(t) : otherPort);
    const c = client(portOf(sessionOn), 'vera', 'vera-Passw0rd!');
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      const running = c.query('select pg_sleep(30)').then(
        () => null,
        (err: { code?: string; message: string }) => err,
      );
      // The query is running on the server before the cancel is sent.
      const watcher = client(portOf(sessionOn), ADMIN, PASSWORD);
      await watcher.connect();
      await until('pg_sleep running', async () => {
        const r = await watcher.query(`select 1 from pg_stat_activity where pid = $1 and state = 'active'`, [key.processID]);
        return r.rowCount === 1;
      });
      await watcher.end();
      const sent = Date.now();
      await cancelThrough(portOf(cancelOn), key.processID, key.secretKey);
      const err = await running;
      ctx.diagnostic(`the query ended ${Date.now() - sent} ms after the CancelRequest was sent`);
      assert.equal(err?.code, '57014');
      assert.equal(err?.message, 'canceling statement due to user request');
    } finally {
      await c.end();
    }
  });
}

test('a wrong cancel key sent to one gateway cancels nothing on the other', { timeout: 60_000 }, async () => {
  const c = client(otherPort, 'vera', 'vera-Passw0rd!');
  await c.connect();
  try {
    const key = c as unknown as { processID: number; secretKey: number };
    const running = c.query('select pg_sleep(1.5) as slept');
    await cancelThrough(gatewayPort(t), key.processID, key.secretKey ^ 0x5a5a5a5a);
    assert.equal((await running).rowCount, 1, 'the query ran to its end');
  } finally {
    await c.end();
  }
});

interface BlockView {
  id: string;
  address: string;
  user: string | null;
}

test('throttle: failures on the gateway process block the address on the platform (53300), and a CLI unblock lifts it on both', {
  timeout: 120_000,
}, async (ctx) => {
  const p = await t.cli(['server', 'threat-protection', 'update', '--server', SERVER, '--state', 'Enabled']);
  assert.equal(p.code, 0, p.stderr);
  await until('the policy in the snapshot', async () => t.platform.snapshots.snapshot.threat.get(SERVER)?.autoProtection.state === 'Enabled');
  const attacker = '127.0.0.88';
  await t.api('PUT', `/servers/${SERVER}/firewallRules/attacker`, { startIpAddress: attacker, endIpAddress: attacker });
  await until('the rule in the snapshot', async () => t.platform.snapshots.snapshot.network.servers.get(SERVER)?.firewall.match(attacker));
  // The other gateway follows the catalog on its own: a good login from the attacker's address there first.
  await until('the rule on the gateway process', async () => (await tryConnect(client(otherPort, 'tom', 'tom-Passw0rd!', attacker))) === true);

  for (let i = 0; i < 5; i++) {
    const r = await tryConnect(client(otherPort, 'tom', `wrong-${i}`, attacker));
    assert.equal(typeof r === 'object' && r.code, '28P01', JSON.stringify(r));
  }
  const blockedAt = Date.now();
  const onOther = await tryConnect(client(otherPort, 'tom', 'tom-Passw0rd!', attacker));
  assert.deepEqual(onOther, { code: '53300', message: THROTTLED }, 'blocked where the failures were');
  const onPlatform = await until(
    'the block on the platform gateway',
    async () => {
      const r = await tryConnect(client(gatewayPort(t), 'tom', 'tom-Passw0rd!', attacker));
      return typeof r === 'object' && r.code === '53300' ? r : null;
    },
    10_000,
    50,
  );
  ctx.diagnostic(`block reached the platform gateway in about ${Date.now() - blockedAt} ms (polled every 50 ms)`);
  assert.deepEqual(onPlatform, { code: '53300', message: THROTTLED });
  // Elsewhere tom still logs in, on both gateways.
  for (const port of [otherPort, gatewayPort(t)]) assert.equal(await tryConnect(client(port, 'tom', 'tom-Passw0rd!')), true);

  // The platform's API lists the block started on the other gateway; unblocking it there lifts it on both.
  const list = await t.cli(['server', 'protection', 'list', '--server', SERVER, '-o', 'json']);
  assert.equal(list.code, 0, list.stderr);
  const blocks = (JSON.parse(list.stdout) as BlockView[]).filter((b) => b.address === attacker);
  assert.ok(blocks.length >= 1, list.stdout);
  for (const b of blocks) {
    const un = await t.cli(['server', 'protection', 'unblock', '--server', SERVER, '--id', b.id]);
    assert.equal(un.code, 0, un.stderr);
  }
  for (const port of [gatewayPort(t), otherPort]) {
    await until(`the unblock on port ${port}`, async () => (await tryConnect(client(port, 'tom', 'tom-Passw0rd!', attacker))) === true, 10_000, 50);
  }
});

interface Hit {
  gateway: string;
  seq: number;
  time: string;
  event: { type: string; server?: string };
}

test('audit verify checks both gateways streams; audit search merges their records by time, each naming its stream', { timeout: 120_000 }, async () => {
  const verify = await t.cli(['audit', 'verify']);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  assert.match(verify.stdout, /^platform: verified: \d+ records \(seq 1\.\.\d+\), \d+ signed checkpoints/m);
  assert.match(verify.stdout, new RegExp(`^${OTHER_STREAM}: verified: \\d+ records \\(seq 1\\.\\.\\d+\\), \\d+ signed checkpoints`, 'm'));
  const json = JSON.parse((await t.cli(['audit', 'verify', '-o', 'json'])).stdout) as {
    ok: boolean;
    streams: { stream: string; ok: boolean; lastCheckpoint?: { keyId: string } }[];
  };
  assert.equal(json.ok, true);
  assert.deepEqual(
    json.streams.map((s) => [s.stream, s.ok]),
    [
      ['platform', true],
      [OTHER_STREAM, true],
    ],
  );

  const [own, theirs] = json.streams.map((s) => s.lastCheckpoint?.keyId);
  assert.ok(own && theirs && own !== theirs, 'each stream is signed with its own key');

  const r = await t.cli(['audit', 'search', '--type', 'auth.succeeded', '--server', SERVER, '--limit', '1000', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const hits = JSON.parse(r.stdout) as Hit[];
  const streams = new Set(hits.map((h) => h.gateway));
  assert.deepEqual([...streams].sort(), [OTHER_STREAM, 'platform'].sort(), 'logins through both gateways');
  for (let i = 1; i < hits.length; i++) assert.ok(Date.parse(hits[i - 1]!.time) <= Date.parse(hits[i]!.time), 'merged by time');
  // The block started on the gateway process is in its own stream.
  const blocked = await t.cli(['audit', 'search', '--type', 'protection.blocked', '-o', 'json']);
  assert.ok((JSON.parse(blocked.stdout) as Hit[]).some((h) => h.gateway === OTHER_STREAM && h.event.server === SERVER));

  // Paging across both streams: pages of 3 give the same records, in the same order, as one page.
  const all = JSON.parse((await t.cli(['audit', 'search', '--server', SERVER, '--limit', '1000', '-o', 'json'])).stdout) as Hit[];
  const paged: Hit[] = [];
  let after: string | number | null = null;
  for (let n = 0; n < 1000; n++) {
    const q = new URLSearchParams({ server: SERVER, limit: '3' });
    if (after !== null) q.set('after', String(after));
    const page: { value: Hit[]; next: string | number | null } = await t.api('GET', `/audit/events?${q}`);
    paged.push(...page.value);
    after = page.next;
    if (after === null) break;
  }
  const key = (h: Hit) => `${h.gateway}/${h.seq}`;
  assert.deepEqual(paged.slice(0, all.length).map(key), all.map(key));
});
