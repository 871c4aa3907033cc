// Before authentication, an anonymous client of the gateway learns nothing and poses as nobody
// (issue 15, W2 and W8): the mock SCRAM salt of an unknown role differs from server to server,
// a PROXY header without a client address is refused, IPv6 clients are throttled by /64,
// replication connections are refused by the gateway itself, and the platform's own
// application_name values are reserved.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pg from 'pg';
import { allowLoopback, auditEvents, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { conninfo, errorIn, gatewayPort, psql, rawFrom, startupPacket, tryConnect } from '../helpers/clients.js';
import { buildProxyV2 } from '../../src/gateway/proxy-protocol/index.js';

let t: TestPlatform;
let linkPort: number;
const PASSWORD = 'Pre-Auth-Passw0rd!';
const A = 'pah1';
const B = 'pah2';
const THROTTLED = { code: '53300', message: 'Too many failed login attempts from this address. Try again later.' };

before(async () => {
  t = await startTestPlatform({ privateLink: { hosts: ['127.0.0.1'], port: 0, loadBalancers: ['127.0.0.1/32'] } });
  linkPort = t.platform.gateway.portOf('private-link')!;
  for (const name of [A, B]) {
    const r = await t.cli(['server', 'create', name, '--admin-user', 'alice', '--admin-password', PASSWORD, '--ssl-enforcement', 'Disabled']);
    assert.equal(r.code, 0, r.stderr);
    await allowLoopback(t, name);
  }
  // Two /64 networks of documentation addresses, reached through the load balancer.
  await t.api('PUT', `/servers/${A}/firewallRules/v6-docs`, { startIpAddress: '2001:db8:1:2::', endIpAddress: '2001:db8:1:3:ffff:ffff:ffff:ffff' });
  await until('the IPv6 rule in the gateway snapshot', async () => t.platform.snapshots.snapshot.network.servers.get(A)?.firewall.match('2001:db8:1:3::9'));
});
after(async () => {
  await t?.stop();
});

/** Messages from the gateway, parsed as they arrive. */
class Messages {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }
  /** The next message, or null once the gateway closed. */
  async next(): Promise<{ type: string; body: Buffer } | null> {
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= 1 + len) {
          const m = { type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, 1 + len) };
          this.buf = this.buf.subarray(1 + len);
          return m;
        }
      }
      if (this.closed) return null;
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
  }
}

function saslInitial(data: string): Buffer {
  const mech = Buffer.from('SCRAM-SHA-256\0');
  const d = Buffer.from(data);
  const b = Buffer.alloc(5 + mech.length + 4 + d.length);
  b[0] = 0x70;
  b.writeInt32BE(4 + mech.length + 4 + d.length, 1);
  mech.copy(b, 5);
  b.writeInt32BE(d.length, 5 + mech.length);
  d.copy(b, 9 + mech.length);
  return b;
}

/** A raw SCRAM exchange up to the gateway's server-first-message: its salt and iteration count.
 * The socket is closed there, so no failed login is counted. */
async function serverFirst(user: string): Promise<{ salt: string; iterations: string }> {
  const s = net.connect({ host: '127.0.0.1', port: gatewayPort(t) });
  const m = new Messages(s);
  await new Promise((r) => s.once('connect', r));
  s.write(startupPacket({ user, database: 'postgres' }));
  const sasl = await m.next();
  assert.equal(sasl?.type, 'R');
  assert.equal(sasl.body.readInt32BE(0), 10, 'AuthenticationSASL');
  s.write(saslInitial('n,,n=,r=pre-auth-hardening-nonce'));
  const cont = await m.next();
  s.destroy();
  assert.equal(cont?.type, 'R');
  assert.equal(cont.body.readInt32BE(0), 11, 'AuthenticationSASLContinue');
  const fields = Object.fromEntries(
    cont.body
      .subarray(4)
      .toString('utf8')
      .split(',')
      .map((kv) => [kv[0], kv.slice(2)]),
  );
  return { salt: fields.s!, iterations: fields.i! };
}

test('W2: an unknown role sees a different mock salt on each server, the same one each time on one server', async () => {
  const a1 = await serverFirst(`nobody@${A}`);
  const a2 = await serverFirst(`nobody@${A}`);
  const b1 = await serverFirst(`nobody@${B}`);
  assert.deepEqual(a1, a2, 'same server, same unknown role: same salt');
  assert.notEqual(a1.salt, b1.salt, 'two servers: two salts, as for a real role');
  assert.equal(a1.iterations, '4096');
  assert.equal(b1.iterations, '4096');
  // What the mock imitates: a real role (alice exists on both) has its own salt per server.
  const realA = await serverFirst(`alice@${A}`);
  const realB = await serverFirst(`alice@${B}`);
  assert.notEqual(realA.salt, realB.salt);
  assert.equal(realA.iterations, a1.iterations);
});

/** Sends a PROXY header and a StartupMessage from 127.0.0.1, a configured load balancer. */
function proxied(header: Buffer) {
  return rawFrom('127.0.0.1', linkPort, Buffer.concat([header, startupPacket({ user: `alice@${A}`, database: 'postgres' })]));
}

test('W8a: a PROXY header without a client address (AF_UNSPEC, AF_UNIX, v1 UNKNOWN) is refused and audited', async () => {
  // Control: with a real client address the gateway goes on (to the SCRAM request).
  const ok = await rawFrom(
    '127.0.0.1',
    linkPort,
    Buffer.concat([
      buildProxyV2({ command: 'PROXY', source: { address: '127.0.0.1', port: 40000 }, destination: { address: '127.0.0.1', port: linkPort } }),
      startupPacket({ user: `alice@${A}`, database: 'postgres' }),
    ]),
  );
  assert.equal(ok.data[0], 0x52, 'AuthenticationSASL');

  const unspec = buildProxyV2({ command: 'PROXY', family: 'unspec', transport: 'unspec' });
  assert.equal(unspec[12], 0x21); // version 2, command PROXY
  assert.equal(unspec[13], 0x00); // AF_UNSPEC
  const r1 = await proxied(unspec);
  assert.equal(r1.closed, true);
  assert.equal(r1.data.length, 0, 'closed before any protocol byte: the balancer is not the client');

  const unix = buildProxyV2({
    command: 'PROXY',
    family: 'unix',
    transport: 'stream',
    source: { address: '/run/lb.sock', port: 0 },
    destination: { address: '/run/gw.sock', port: 0 },
  });
  const r2 = await proxied(unix);
  assert.equal(r2.closed, true);
  assert.equal(r2.data.length, 0);

  const r3 = await proxied(Buffer.from('PROXY UNKNOWN\r\n', 'latin1'));
  assert.equal(r3.closed, true);
  assert.equal(r3.data.length, 0);

  const denied = await until('three denied connections in the audit log', async () => {
    const d = auditEvents<{ type: string; reason?: string; sqlstate?: string; connection?: { clientAddress: string; listener: string } }>(t).filter(
      (e) => e.type === 'connection.denied' && e.reason === 'proxy-no-client-address',
    );
    return d.length >= 3 && d;
  });
  for (const e of denied) {
    assert.equal(e.sqlstate, '08P01');
    assert.equal(e.connection?.listener, 'private-link');
  }
});

/** A login with a wrong password from `source`, as a load balancer in front of the gateway says. */
function failFrom(source: string, user = 'alice'): Promise<true | { code?: string; message: string }> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: linkPort,
    user: `${user}@${A}`,
    password: 'wrong-password',
    database: 'postgres',
    ssl: false,
    stream: () => {
      const s = new net.Socket();
      const connect = s.connect.bind(s) as (o: net.TcpSocketConnectOpts) => net.Socket;
      (s as unknown as { connect: (port: number, host: string) => net.Socket }).connect = (port: number, host: string) => {
        const r = connect({ port, host });
        const destination = { address: source.includes(':') ? '::1' : '127.0.0.1', port: linkPort };
        s.once('connect', () => s.write(buildProxyV2({ command: 'PROXY', source: { address: source, port: 40000 }, destination })));
        return r;
      };
      return s;
    },
  });
  return tryConnect(c);
}

test('W8b: an attacker rotating through the addresses of one IPv6 /64 is throttled as one client', async () => {
  const failed = { code: '28P01', message: 'password authentication failed for user "alice"' };
  // Default protection: 5 failures of one user from one client start a block. Each attempt
  // comes from a new address of 2001:db8:1:2::/64.
  for (let i = 1; i <= 5; i++) assert.deepEqual(await failFrom(`2001:db8:1:2::${i.toString(16)}`), failed, `attempt ${i}`);
  // The failures are counted as they are answered (the event bus is synchronous): the next
  // attempt, from an address of the /64 never used before, is throttled.
  assert.deepEqual(await failFrom('2001:db8:1:2:ffff:1:2:3'), THROTTLED);
  const block = await until('the protection.blocked event', async () =>
    auditEvents<{ type: string; address?: string; scope?: string }>(t).find((e) => e.type === 'protection.blocked' && e.address?.startsWith('2001:db8:1:2:')),
  );
  assert.equal(block.address, '2001:db8:1:2::/64');
  // Another /64 is another client; IPv4-mapped addresses stay per IPv4 address.
  assert.deepEqual(await failFrom('2001:db8:1:3::1'), failed);
  assert.deepEqual(await failFrom('::ffff:127.0.0.1'), failed);
});

test('W8c: a replication connection is refused by the gateway itself, before any password or server', async () => {
  for (const mode of ['true', 'database', 'on', '1']) {
    const r = await rawFrom('127.0.0.1', gatewayPort(t), startupPacket({ user: `alice@${A}`, database: 'postgres', replication: mode }));
    assert.equal(r.closed, true);
    assert.equal(r.data[0], 0x45, `replication=${mode}: an ErrorResponse first, no authentication request`);
    assert.deepEqual(errorIn(r.data), { sqlstate: '28000', message: 'replication connections are not supported through the gateway' }, mode);
    assert.doesNotMatch(r.data.toString('latin1'), /pg_hba|\[local\]/);
  }
  // libpq's own replication mode, as pg_basebackup or pg_receivewal would use it.
  const viaPsql = await psql(conninfo(t, { user: `alice@${A}`, sslmode: 'disable', replication: 'database' }), PASSWORD, ['-c', 'IDENTIFY_SYSTEM']);
  assert.notEqual(viaPsql.code, 0);
  assert.match(viaPsql.stderr, /FATAL: {2}replication connections are not supported through the gateway/);
  // replication=false is an ordinary session.
  const plain = await psql(conninfo(t, { user: `alice@${A}`, sslmode: 'disable', replication: 'false' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(plain.stdout, '1', plain.stderr);
  const denied = await until('the refusals in the audit log', async () => {
    const d = auditEvents<{ type: string; reason?: string; server?: string; sqlstate?: string }>(t).filter(
      (e) => e.type === 'connection.denied' && e.reason === 'replication-refused',
    );
    return d.length >= 5 && d;
  });
  assert.ok(denied.every((e) => e.server === A && e.sqlstate === '28000'));
});

test("W8d: a client cannot take the platform's own application_name, by parameter or by options", async () => {
  const reserved = (name: string) => ({ sqlstate: '42939', message: `application_name "${name}" is reserved for the platform's own sessions` });
  for (const name of ['pgwarden-maintenance', 'pgwarden', 'PGWarden-Backup', 'pgwarden-change-feed']) {
    const r = await rawFrom('127.0.0.1', gatewayPort(t), startupPacket({ user: `alice@${A}`, database: 'postgres', application_name: name }));
    assert.equal(r.data[0], 0x45, `${name}: refused before authentication`);
    assert.deepEqual(errorIn(r.data), reserved(name));
  }
  for (const options of ['-c application_name=pgwarden-maintenance', '--application_name=pgwarden-backup', '-capplication_name=pgwarden']) {
    const r = await rawFrom('127.0.0.1', gatewayPort(t), startupPacket({ user: `alice@${A}`, database: 'postgres', options }));
    assert.equal(r.data[0], 0x45, options);
    assert.equal(errorIn(r.data)?.sqlstate, '42939', options);
  }
  // psql with PGAPPNAME-style conninfo: refused, and nothing reached the server.
  const viaPsql = await psql(conninfo(t, { user: `alice@${A}`, sslmode: 'disable', application_name: 'pgwarden-maintenance' }), PASSWORD, ['-c', 'select 1']);
  assert.match(viaPsql.stderr, /FATAL: {2}application_name "pgwarden-maintenance" is reserved for the platform's own sessions/);
  // Any other name is the client's to choose, and the server sees it.
  const own = await psql(conninfo(t, { user: `alice@${A}`, sslmode: 'disable', application_name: 'billing-app' }), PASSWORD, [
    '-c',
    'select application_name from pg_stat_activity where pid = pg_backend_pid()',
  ]);
  assert.equal(own.stdout, 'billing-app', own.stderr);
  const denied = await until('the refusals in the audit log', async () => {
    const d = auditEvents<{ type: string; reason?: string }>(t).filter((e) => e.type === 'connection.denied' && e.reason === 'reserved-application-name');
    return d.length >= 8 && d;
  });
  assert.ok(denied.length >= 8);
});

test('fuzz finding: a second GSSENCRequest is refused as PostgreSQL refuses it, not answered again', async () => {
  const gss = Buffer.from('0000000804d21630', 'hex');
  const r = await rawFrom('127.0.0.1', gatewayPort(t), Buffer.concat([gss, gss, gss]));
  assert.equal(r.closed, true);
  assert.equal(r.data.toString('latin1', 0, 1), 'N', 'the first one is answered');
  assert.deepEqual(errorIn(r.data.subarray(1)), { sqlstate: '0A000', message: 'unsupported frontend protocol 1234.5680: server supports 3.0 to 3.2' });
  assert.equal(r.data.subarray(1).readInt32BE(1) + 2, r.data.length, 'nothing after the FATAL');
});

test('after all of it, a real client is served', async () => {
  const c = new pg.Client({ host: '127.0.0.1', port: gatewayPort(t), user: `alice@${B}`, password: PASSWORD, database: 'postgres', ssl: false });
  assert.equal(await tryConnect(c), true);
});
