// Ways to escape the gateway's statement audit (issue 15: V2, V3, W5), performed through the real
// gateway against a real managed server, with the protocol spoken byte by byte where a driver
// would not send it (a Sync flood inside COPY data, 10,001 pipelined Parse messages):
//   V2  COPY FROM STDIN + more Syncs than the tap's bound: what follows the copy is still audited;
//       a tap that stops ends the session (FATAL 58030) and says why in the log (audit.tap-stopped);
//   V3  a statement of 2 MiB is in the log, cut, with its whole length and SHA-256; so is one that
//       pgAudit logs inside a DO block in a jsonlog line longer than one read (4 MiB);
//   W5  the 10,001st named prepared statement does not push the first one's text out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type net from 'node:net';
import { allowLoopback, auditEvents, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { pgwardenAuditInstalled } from '../helpers/pgaudit.js';
import { gatewayClient } from '../helpers/clients.js';

const PASSWORD = 'Escape-Audit-Passw0rd!';
const SERVER = 'escape1';
let t: TestPlatform;

interface Event {
  type: string;
  applicationName?: string;
  connection?: { connId: string };
  sessionId?: string | null;
  text?: string;
  statement?: string;
  class?: string;
  commandTag?: string;
  outcome?: string;
  rows?: number;
  copyBytes?: number;
  protocol?: string;
  truncated?: boolean;
  textLength?: number;
  textSha256?: string;
  reason?: string;
}

before(async () => {
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'owner', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  const u = await t.cli(['server', 'audit', 'update', '--server', SERVER, '--classes', 'READ,WRITE,DDL,ROLE,MISC']);
  assert.equal(u.code, 0, u.stderr);
  await until('the audit classes in the gateway snapshot', async () => t.platform.snapshots.snapshot.audit.get(SERVER)?.classes.includes('READ'), 10_000, 50);
});
after(async () => t?.stop());

// ---- the protocol, by hand ----

function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`);
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const Q = (sql: string) => message('Q', cstr(sql));
const P = (name: string, sql: string) => message('P', cstr(name), cstr(sql), int16(0));
const B = (portal: string, statement: string) => message('B', cstr(portal), cstr(statement), int16(0), int16(0), int16(0));
const E = (portal: string) => message('E', cstr(portal), int32(0));
const SYNC = message('S');
const COPY_DONE = message('c');
const copyData = (row: string) => message('d', Buffer.from(row));

interface Msg {
  type: string;
  body: Buffer;
}

/** A session logged in with node-postgres (TLS, SCRAM), then spoken to byte by byte. */
class RawSession {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(private readonly stream: net.Socket) {
    stream.removeAllListeners('data');
    stream.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    stream.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  static async open(app: string): Promise<RawSession> {
    const c = await gatewayClient(t, { server: SERVER, user: 'owner', password: PASSWORD, app });
    c.on('error', () => undefined); // the session is ours after the login
    return new RawSession((c as unknown as { connection: { stream: net.Socket } }).connection.stream);
  }

  send(...parts: Buffer[]): void {
    this.stream.write(Buffer.concat(parts));
  }

  /** The next message from the server; null once the connection is closed and drained. */
  async next(): Promise<Msg | null> {
    for (;;) {
      if (this.buf.length >= 5) {
        const length = this.buf.readInt32BE(1);
        if (this.buf.length >= 1 + length) {
          const m = { type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, 1 + length) };
          this.buf = this.buf.subarray(1 + length);
          return m;
        }
      }
      if (this.closed) return null;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }

  /** Messages up to and including the first of `type` (throws if the connection closes first). */
  async until(type: string): Promise<Msg[]> {
    const seen: Msg[] = [];
    for (;;) {
      const m = await this.next();
      if (m === null)
        throw new Error(
          `connection closed before '${type}': ${seen.map((s) => s.type).join('')} ${seen
            .filter((s) => s.type === 'E')
            .map((s) => JSON.stringify(errorFields(s.body)))
            .join(' ')}`,
        );
      seen.push(m);
      if (m.type === type) return seen;
    }
  }

  /** Everything until the connection closes. */
  async rest(): Promise<Msg[]> {
    const seen: Msg[] = [];
    for (let m = await this.next(); m !== null; m = await this.next()) seen.push(m);
    return seen;
  }

  close(): void {
    this.stream.destroy();
  }
}

function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let at = 0; at < body.length && body[at] !== 0; ) {
    const end = body.indexOf(0, at + 1);
    out[String.fromCharCode(body[at]!)] = body.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return out;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function events(app: string): Event[] {
  return auditEvents<Event>(t).filter((e) => e.applicationName === app);
}

async function statementEvent(app: string, match: (e: Event) => boolean): Promise<Event> {
  return until(`the statement event in the audit log (${app})`, async () => events(app).find((e) => e.type === 'statement' && match(e)), 15_000, 100);
}

// ---- V2 ----

test('V2: COPY FROM STDIN with 100,500 Syncs in its data does not switch statement audit off for the rest of the session', async () => {
  const app = 'escape-copy-flood';
  const s = await RawSession.open(app);
  try {
    s.send(Q('CREATE TABLE copy_flood (v text)'));
    await s.until('Z');
    s.send(Q('COPY copy_flood FROM STDIN'));
    const started = await s.until('G');
    assert.equal(started.at(-1)!.type, 'G');
    // More Syncs than the tap's bound of unanswered messages (100,000), between the rows.
    const parts: Buffer[] = [];
    for (let i = 0; i < 100_500; i++) {
      if (i % 1000 === 0) parts.push(copyData(`row ${i}\n`));
      parts.push(SYNC);
    }
    parts.push(COPY_DONE);
    s.send(...parts);
    const copied = await s.until('Z');
    const complete = copied.find((m) => m.type === 'C');
    assert.equal(complete?.body.toString('utf8', 0, complete.body.length - 1), 'COPY 101');
    assert.deepEqual(copied.filter((m) => m.type === 'Z').length, 1, 'the server ignored the Syncs inside the copy');

    // Then a DDL statement: it must be in the log.
    s.send(Q('CREATE TABLE after_copy_flood (id int)'));
    await s.until('Z');
    const ddl = await statementEvent(app, (e) => e.text === 'CREATE TABLE after_copy_flood (id int)');
    assert.equal(ddl.class, 'DDL');
    assert.equal(ddl.outcome, 'success');
    const copy = await statementEvent(app, (e) => e.text === 'COPY copy_flood FROM STDIN');
    assert.equal(copy.rows, 101);
    assert.ok(!events(app).some((e) => e.type === 'audit.tap-stopped'), 'the audit did not stop');
  } finally {
    s.close();
  }
});

test('V2: the same flood sent before the server answered the COPY, and with the extended protocol', async () => {
  const app = 'escape-copy-pipelined';
  const s = await RawSession.open(app);
  try {
    s.send(Q('CREATE TABLE copy_pipelined (v text)'));
    await s.until('Z');
    // Everything in one write: the tap sees the Syncs before the server's CopyInResponse.
    const parts: Buffer[] = [Q('COPY copy_pipelined FROM STDIN')];
    for (let i = 0; i < 100_200; i++) {
      if (i % 1000 === 0) parts.push(copyData(`row ${i}\n`));
      parts.push(SYNC);
    }
    parts.push(COPY_DONE, Q('CREATE TABLE after_pipelined_flood (id int)'));
    s.send(...parts);
    await s.until('Z'); // the COPY
    await s.until('Z'); // the CREATE TABLE
    await statementEvent(app, (e) => e.text === 'CREATE TABLE after_pipelined_flood (id int)' && e.outcome === 'success');

    // Extended protocol: Parse/Bind/Execute/Sync, then the data with Syncs in it, then Sync.
    s.send(P('', 'COPY copy_pipelined FROM STDIN'), B('', ''), E(''), SYNC);
    await s.until('G');
    const flood: Buffer[] = [];
    for (let i = 0; i < 100_100; i++) {
      if (i % 1000 === 0) flood.push(copyData(`x ${i}\n`));
      flood.push(SYNC);
    }
    s.send(...flood, COPY_DONE, SYNC);
    await s.until('Z');
    s.send(P('', 'CREATE TABLE after_extended_flood (id int)'), B('', ''), E(''), SYNC);
    await s.until('Z');
    const ddl = await statementEvent(app, (e) => e.text === 'CREATE TABLE after_extended_flood (id int)');
    assert.equal(ddl.protocol, 'extended');
    assert.equal(ddl.outcome, 'success');
    assert.equal((await statementEvent(app, (e) => e.text === 'COPY copy_pipelined FROM STDIN' && e.protocol === 'extended')).rows, 101);
  } finally {
    s.close();
  }
});

test('V2: a tap that cannot follow the stream ends the session with FATAL 58030 and an audit.tap-stopped event', async () => {
  // A message the tap cannot frame (length 2): the server never sees it.
  const app = 'escape-tap-garbage';
  const s = await RawSession.open(app);
  s.send(Buffer.concat([Buffer.from('Q'), int32(2)]));
  const rest = await s.rest();
  const fatal = rest.find((m) => m.type === 'E');
  assert.ok(fatal, 'an ErrorResponse before the close');
  const f = errorFields(fatal.body);
  assert.deepEqual([f.S, f.C, f.M], ['FATAL', '58030', 'Statement audit stopped for this session, so the session was ended.']);
  const stopped = await until('the audit.tap-stopped event', async () => events(app).find((e) => e.type === 'audit.tap-stopped'), 10_000, 100);
  assert.match(stopped.reason ?? '', /invalid message length 2|message type 0x51 with length 2/); // JavaScript relay | native relay

  // A message the server refuses inside COPY data (here a Describe): ended too, not guessed at.
  const app2 = 'escape-tap-copy-intruder';
  const s2 = await RawSession.open(app2);
  s2.send(Q('CREATE TABLE copy_intruder (v text)'));
  await s2.until('Z');
  s2.send(Q('COPY copy_intruder FROM STDIN'));
  await s2.until('G');
  s2.send(copyData('a\n'), message('D', Buffer.from('S'), cstr('')), Q('CREATE TABLE never_created (id int)'));
  const rest2 = await s2.rest();
  const e2 = errorFields(rest2.find((m) => m.type === 'E' && errorFields(m.body).S === 'FATAL')?.body ?? Buffer.alloc(0));
  assert.deepEqual([e2.C, e2.M], ['58030', 'Statement audit stopped for this session, so the session was ended.']);
  const stopped2 = await until('the audit.tap-stopped event', async () => events(app2).find((e) => e.type === 'audit.tap-stopped'), 10_000, 100);
  assert.match(stopped2.reason ?? '', /during COPY FROM STDIN/);
  const c = await t.platform.servers.connect(t.platform.snapshots.snapshot.servers.get(SERVER)!.id);
  try {
    const r = await c.query("select to_regclass('never_created') is null as absent");
    assert.equal(r.rows[0].absent, true, 'nothing after the stop reached the server');
  } finally {
    await c.end();
  }
});

test('V2: a client message of type 0x00 (a forged relay record: shape key, unnamed, skip run) ends the session, and nothing after it runs', async () => {
  // The native relay hands JavaScript its own records as type 0x00 messages among the client's:
  // a client that sends one must not pass it off as the relay's (a forged key could have its
  // shape relayed unobserved in every session of the audit configuration).
  const forged = [
    ['key', Buffer.concat([Buffer.from([0]), int32(24), int32(0x6b), Buffer.alloc(16, 7)])],
    ['unnamed', Buffer.concat([Buffer.from([0]), int32(8), int32(0x75)])],
    ['skip run', Buffer.concat([Buffer.from([0]), int32(16), int32(0x64), int32(1), int32(9)])],
  ] as const;
  for (const [name, record] of forged) {
    const app = `escape-forged-${name.replace(' ', '-')}`;
    const table = `forged_${name.replace(' ', '_')}`;
    const s = await RawSession.open(app);
    s.send(record, Q(`CREATE TABLE ${table} (id int)`));
    const rest = await s.rest();
    const f = errorFields(rest.find((m) => m.type === 'E')?.body ?? Buffer.alloc(0));
    if (process.env.PGWARDEN_RELAY === 'js') {
      // The JavaScript relay reads no records: the message reaches PostgreSQL, which refuses it.
      assert.deepEqual([f.S, f.C, f.M], ['FATAL', '08P01', 'invalid frontend message type 0'], name);
    } else {
      assert.deepEqual([f.S, f.C, f.M], ['FATAL', '58030', 'Statement audit stopped for this session, so the session was ended.'], name);
      const stopped = await until('the audit.tap-stopped event', async () => events(app).find((e) => e.type === 'audit.tap-stopped'), 10_000, 100);
      assert.match(stopped.reason ?? '', /a message of type 0x00 \(the relay's own records\)/, name);
    }
    const c = await t.platform.servers.connect(t.platform.snapshots.snapshot.servers.get(SERVER)!.id);
    try {
      const r = await c.query('select to_regclass($1) is null as absent', [table]);
      assert.equal(r.rows[0].absent, true, `${name}: nothing after the forged record reached the server`);
    } finally {
      await c.end();
    }
  }
});

// ---- V3 ----

test('V3: a 2 MiB statement is in the log, cut to 8 KiB, with its whole length and SHA-256', async () => {
  const app = 'escape-big-statement';
  const c = await gatewayClient(t, { server: SERVER, user: 'owner', password: PASSWORD, app });
  try {
    const big = `SELECT '${'x'.repeat(2 * 1024 * 1024)}' AS big`;
    await c.query(big);
    // Under the tap's own limit (1 MiB) but over what an event keeps: a DDL with a long comment.
    const ddl = `CREATE TABLE big_comment (id int /* ${'c'.repeat(200 * 1024)} */)`;
    await c.query(ddl);
    const e = await statementEvent(app, (x) => x.textLength === Buffer.byteLength(big));
    assert.equal(e.truncated, true);
    assert.equal(e.textSha256, sha256(big));
    assert.equal(e.outcome, 'success');
    assert.ok(big.startsWith(e.text!) && e.text!.length === 8192, `kept ${e.text!.length} bytes`);
    const d = await statementEvent(app, (x) => x.commandTag === 'CREATE TABLE' && x.truncated === true);
    assert.equal(d.class, 'DDL');
    assert.equal(d.textLength, Buffer.byteLength(ddl));
    assert.equal(d.textSha256, sha256(ddl));
    assert.ok(ddl.startsWith(d.text!) && Buffer.byteLength(d.text!) === 8192);
  } finally {
    await c.end();
  }
});

const pgauditInstalled = pgwardenAuditInstalled();

test('V3: a statement pgAudit logs in a line longer than 4 MiB is read, cut, with its length and SHA-256', {
  skip: pgauditInstalled ? false : 'needs pgaudit and ext/pgwarden_audit installed',
}, async () => {
  const app = 'escape-big-nested';
  const c = await gatewayClient(t, { server: SERVER, user: 'owner', password: PASSWORD, app });
  try {
    const inner = `CREATE TABLE big_nested (id int /* ${'n'.repeat(5 * 1024 * 1024)} */)`;
    await c.query(`DO $do$ BEGIN EXECUTE $x$${inner}$x$; END $do$`);
    const e = await until(
      'the statement.pgaudit event of the nested CREATE TABLE',
      async () =>
        auditEvents<Event & { command?: string }>(t).find(
          (x) =>
            x.type === 'statement.pgaudit' && x.command === 'CREATE TABLE' && x.textLength !== undefined && x.statement?.startsWith('CREATE TABLE big_nested'),
        ),
      30_000,
      200,
    );
    assert.equal(e.truncated, true);
    assert.equal(e.textLength, Buffer.byteLength(inner));
    assert.equal(e.textSha256, sha256(inner));
    assert.equal(Buffer.byteLength(e.statement!), 8192);
    assert.ok(e.sessionId, 'joined to the gateway session');
  } finally {
    await c.end();
  }
});

// ---- W5 ----

test('W5: after 10,001 named prepared statements the first one executed is logged with its text', async () => {
  const app = 'escape-many-prepared';
  const s = await RawSession.open(app);
  try {
    const parts: Buffer[] = [];
    for (let i = 0; i <= 10_000; i++) parts.push(P(`w5_${i}`, `SELECT ${i} AS w5_marker_${i}`));
    parts.push(SYNC);
    s.send(...parts);
    await s.until('Z');
    s.send(B('', 'w5_0'), E(''), SYNC);
    const answered = await s.until('Z');
    assert.ok(
      answered.some((m) => m.type === 'C'),
      'the server ran it',
    );
    const e = await statementEvent(app, (x) => x.protocol === 'extended' && x.text === 'SELECT 0 AS w5_marker_0');
    assert.equal(e.class, 'READ');
    assert.equal(e.outcome, 'success');
    assert.ok(!events(app).some((x) => x.type === 'statement' && x.class === 'UNKNOWN'), 'no statement logged as UNKNOWN');
  } finally {
    s.close();
  }
});

test('W5: a second Parse of the same name, which the server refuses, does not make the tap forget the statement the server runs', async () => {
  const app = 'escape-parse-refused';
  const s = await RawSession.open(app);
  try {
    s.send(Q('CREATE TABLE w5_accounts (id int)'));
    await s.until('Z');
    s.send(P('victim', 'DELETE FROM w5_accounts'), SYNC);
    await s.until('Z');
    s.send(P('victim', 'SELECT 1'), SYNC); // 42P05: the server keeps the DELETE
    const refused = await s.until('Z');
    assert.equal(errorFields(refused.find((m) => m.type === 'E')!.body).C, '42P05');
    s.send(B('', 'victim'), E(''), SYNC);
    const ran = await s.until('Z');
    assert.ok(
      ran.some((m) => m.type === 'C' && m.body.toString('utf8').startsWith('DELETE')),
      'the server ran the DELETE',
    );
    const e = await statementEvent(app, (x) => x.protocol === 'extended' && x.commandTag === 'DELETE' && x.outcome === 'success');
    assert.equal(e.text, 'DELETE FROM w5_accounts');
    assert.equal(e.class, 'WRITE');
  } finally {
    s.close();
  }
});
