// The audit log of a real platform: who changed a rule, why a login failed, search and export
// through the CLI, and `audit verify` passing on the untouched store and naming the record
// after tampering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { allowLoopback, auditEvents, cliPath, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';
import { fileKey, openSealed, SEAL_HEADER_BYTES, sealFrame } from '../../src/audit/store/seal.js';
import { storeKeyOf } from '../../src/audit/store/seal-keys.js';

let t: TestPlatform;
const PASSWORD = 'Aud1t-Passw0rd!';

before(async () => {
  t = await startTestPlatform();
  assert.equal((await t.cli(['server', 'create', 'au1', '--admin-user', 'alice', '--admin-password', PASSWORD])).code, 0);
  await allowLoopback(t, 'au1');
});
after(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a firewall rule change made through the CLI names who made it; searching the log is itself audited', async () => {
  const sec = (await t.cli(['token', 'create', '--role', 'SecurityAdmin', '--name', 'sec-ops'])).stdout.trim();
  const env = { PGWARDEN_API_URL: t.target.url, PGWARDEN_TOKEN: sec, PGWARDEN_CA_FILE: t.platform.paths.caCert };
  const r = await t.cli(
    ['server', 'firewall-rule', 'create', '--server', 'au1', '--name', 'office', '--start-ip-address', '198.51.100.1', '--end-ip-address', '198.51.100.9'],
    env,
  );
  assert.equal(r.code, 0, r.stderr);
  await sleep(200);
  const found = await t.cli(['audit', 'search', '--type', 'admin.action', '--text', 'firewallRules/office', '-o', 'json']);
  assert.equal(found.code, 0, found.stderr);
  const hits = JSON.parse(found.stdout) as { seq: number; event: { action: string; target: string; outcome: string; actor: { name: string; role: string } } }[];
  const hit = hits.find((h) => h.event.action === 'firewallRule.create');
  assert.ok(hit, found.stdout);
  assert.deepEqual(
    [hit.event.target, hit.event.outcome, hit.event.actor.name, hit.event.actor.role],
    ['/servers/au1/firewallRules/office', 'success', 'sec-ops', 'SecurityAdmin'],
  );
  await sleep(200);
  assert.ok(
    auditEvents(t).some((e) => e.type === 'admin.action' && e.action === 'audit.search'),
    'access to the audit log is recorded',
  );
});

test('a failed login has its reason; search filters by user and outcome; export writes JSON lines', async () => {
  const bad = await psql(conninfo(t, { user: 'alice@au1', sslmode: 'require', application_name: 'audit-bad' }), 'wrong-password', ['-c', 'select 1']);
  assert.notEqual(bad.code, 0);
  const ok = await psql(conninfo(t, { user: 'alice@au1', sslmode: 'require', application_name: 'audit-good' }), PASSWORD, ['-c', 'select 1']);
  assert.equal(ok.code, 0, ok.stderr);
  await sleep(200);
  const failures = JSON.parse((await t.cli(['audit', 'search', '--server', 'au1', '--user', 'alice', '--outcome', 'failure', '-o', 'json'])).stdout) as {
    event: Record<string, unknown>;
  }[];
  const f = failures.find((h) => h.event.applicationName === 'audit-bad');
  assert.ok(f);
  assert.equal(f.event.type, 'auth.failed');
  assert.equal(f.event.sqlstate, '28P01');
  assert.match(String(f.event.reason), /wrong password/);
  assert.ok(!failures.some((h) => h.event.applicationName === 'audit-good'));
  const table = await t.cli(['audit', 'search', '--server', 'au1', '--type', 'auth.succeeded']);
  assert.match(table.stdout, /auth\.succeeded\s+au1\s+alice/);
  const exported = await t.cli(['audit', 'export', '--since', new Date(Date.now() - 3_600_000).toISOString(), '--server', 'au1']);
  const lines = exported.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: number; hash: string; event: { type: string } });
  assert.ok(lines.length >= 3);
  assert.ok(lines.every((l, i) => i === 0 || l.seq > lines[i - 1]!.seq));
  assert.ok(lines.some((l) => l.event.type === 'auth.failed'));
});

test('a reader that stops early (`audit export | head`): the CLI stops quietly, exit code 0', async () => {
  const child = spawn(process.execPath, [cliPath, '--data-dir', t.platform.paths.root, 'audit', 'export', '--since', new Date(0).toISOString()], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Closed before the CLI writes a byte: its first write fails with EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});

test('audit verify passes on the untouched store, names the frame after a changed byte and the record after a re-sealed edit, and a witness catches a cut tail', async () => {
  const ok = await t.cli(['audit', 'verify']);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /^verified: \d+ records \(seq 1\.\.\d+\), \d+ signed checkpoints/);

  await t.platform.audit.store.checkpoint();
  const witnessFile = path.join(path.dirname(t.dataDir), 'witness.json');
  writeFileSync(witnessFile, JSON.stringify(t.platform.audit.store.exportCheckpoint()));

  // The platform's store is sealed, outside the encrypted volume: nothing in it reads in clear.
  const dir = t.platform.audit.dir;
  assert.equal(dir, t.platform.paths.sealedAuditDir);
  const segment = path.join(
    dir,
    readdirSync(dir)
      .filter((n) => n.startsWith('segment-'))
      .sort()[0]!,
  );
  const disk = readFileSync(segment);
  assert.equal(disk.includes('platform.started'), false);
  const storeKey = storeKeyOf(segment);
  const frame = [...openSealed(disk, storeKey, segment)].find((p) => p.kind === 'plain' && p.data.includes('"platform.started"'));
  assert.ok(frame?.kind === 'plain');
  // The store is live: change bytes in place (never rewrite the file, which would drop records
  // appended meanwhile), and put them back the same way.
  const poke = (bytes: Buffer, at: number) => {
    const fd = openSync(segment, 'r+');
    try {
      writeSync(fd, bytes, 0, bytes.length, at);
    } finally {
      closeSync(fd);
    }
  };
  const original = disk.subarray(frame.offset, frame.end);
  // Someone without the key: any changed byte and the frame no longer opens.
  poke(Buffer.from([original[40]! ^ 0x20]), frame.offset + 40);
  const bad = await t.cli(['audit', 'verify']);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, new RegExp(`^FAILED: bad-line at segment-000001\\.log:\\d+.*the frame at offset ${frame.offset} fails authentication`));
  // Someone with the key (the platform's process itself): the same record edited and sealed
  // again in place is still caught by the hash chain, and named.
  const text = frame.data.toString('utf8');
  const key = fileKey(storeKey, disk.subarray(0, SEAL_HEADER_BYTES), segment);
  poke(sealFrame(key, frame.offset, Buffer.from(text.replace('"platform.started"', '"platform.stopped"'))), frame.offset);
  const edited = await t.cli(['audit', 'verify']);
  assert.equal(edited.code, 1);
  assert.match(edited.stdout, /^FAILED: hash-mismatch at segment-000001\.log:\d+ \(seq \d+\)/);
  const seq = Number(/seq (\d+)/.exec(edited.stdout)![1]);
  const line = text.split('\n').find((l) => l.includes('"platform.started"'))!;
  assert.equal((JSON.parse(line) as { seq: number }).seq, seq, 'the changed record is the one named');

  poke(original, frame.offset);
  assert.equal((await t.cli(['audit', 'verify', '--witness', witnessFile])).code, 0);
});

test('pgAudit lines for a statement inside a DO block appear joined to the session', async () => {
  const r = await t.cli(['server', 'audit', 'update', '--server', 'au1', '--classes', 'READ,WRITE,FUNCTION,ROLE,DDL', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).classes, ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL']);
  const shown = await t.cli(['server', 'audit', 'show', '--server', 'au1', '-o', 'json']);
  assert.equal(JSON.parse(shown.stdout).retentionDays, 90);
  const end = Date.now() + 5000;
  while (t.platform.snapshots.snapshot.audit.get('au1')?.classes.includes('WRITE') !== true && Date.now() < end) await sleep(20);
  await sleep(500); // the server reloads its configuration

  const { default: pg } = await import('pg');
  const c = new pg.Client({
    host: '127.0.0.1',
    port: t.platform.gateway.port,
    user: 'alice@au1',
    password: PASSWORD,
    database: 'postgres',
    application_name: 'pgaudit-do',
    ssl: { rejectUnauthorized: false },
  });
  await c.connect();
  await c.query('create table do_target (x int)');
  await c.query('do $$ begin insert into do_target values (42); end $$');
  await c.query("create role leaky login password 'Sup3r-Secret!'");
  await c.end();
  await sleep(200);
  const session = auditEvents<{ type: string; applicationName?: string; connection: { connId: string } }>(t).find(
    (e) => e.type === 'auth.succeeded' && e.applicationName === 'pgaudit-do',
  );
  assert.ok(session);
  type Line = { type: string; sessionId: string | null; command: string; class: string; statement: string; objectName: string };
  let lines: Line[] = [];
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    lines = auditEvents<Line>(t).filter((e) => e.type === 'statement.pgaudit' && e.sessionId === session.connection.connId);
    if (lines.some((l) => l.command === 'INSERT')) break;
    await sleep(200);
  }
  const insert = lines.find((l) => l.command === 'INSERT');
  assert.ok(insert, JSON.stringify(lines));
  assert.equal(insert.class, 'WRITE');
  assert.match(insert.statement, /insert into do_target values \(42\)/);
  assert.equal(insert.objectName, 'public.do_target');
  // The top-level statements come from the gateway itself, not twice.
  assert.ok(!lines.some((l) => l.command === 'DO'), 'no duplicate of what the gateway records');
  type G = { type: string; applicationName?: string; commandTag: string; class: string; text: string };
  const gw = auditEvents<G>(t).filter((e) => e.type === 'statement' && e.applicationName === 'pgaudit-do');
  assert.ok(gw.some((e) => e.commandTag === 'DO' && e.class === 'FUNCTION'));
  const role = gw.find((e) => e.class === 'ROLE')!;
  assert.match(role.text, /password '<redacted>'/i);
  assert.doesNotMatch(JSON.stringify(auditEvents(t)), /Sup3r-Secret/);
});

test('statement audit at the gateway: every class with command tag, objects, outcome and rows; parameters only when asked, redacted', async () => {
  assert.equal(
    (await t.cli(['server', 'audit', 'update', '--server', 'au1', '--classes', 'READ,WRITE,FUNCTION,ROLE,DDL,MISC,MISC_SET', '--log-parameters', 'Disabled']))
      .code,
    0,
  );
  const end = Date.now() + 5000;
  while (!t.platform.snapshots.snapshot.audit.get('au1')?.classes.includes('MISC_SET') && Date.now() < end) await sleep(20);
  const { default: pg } = await import('pg');
  const connect = async (app: string) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port: t.platform.gateway.port,
      user: 'alice@au1',
      password: PASSWORD,
      database: 'postgres',
      application_name: app,
      ssl: { rejectUnauthorized: false },
    });
    await c.connect();
    return c;
  };
  const c = await connect('stmt-classes');
  await c.query('create table items (id int primary key, name text, secret text)');
  await c.query({ text: 'insert into items values ($1, $2, $3)', values: [1, 'one', 'hunter2'] });
  await c.query({ text: 'select name from items where id = $1', values: [1] });
  await c.query('do $$ begin perform 1; end $$');
  await c.query('grant select on items to public');
  await c.query("set work_mem = '8MB'");
  await c.query('vacuum items');
  await assert.rejects(c.query('select 1/0'), (e: Error & { code?: string }) => e.code === '22012');
  await c.query('update items set name = $1 where id = $2; delete from items where id = 99'.split(';')[0]!, ['uno', 1]);
  await c.end();
  const psqlRun = await psql(conninfo(t, { user: 'alice@au1', sslmode: 'require', application_name: 'stmt-psql' }), PASSWORD, [
    '-c',
    'select count(*) from items; delete from items where id = 1',
  ]);
  assert.equal(psqlRun.code, 0, psqlRun.stderr);
  await sleep(300);

  type S = {
    type: string;
    applicationName?: string;
    class: string;
    commandTag: string;
    objects: { name: string }[];
    outcome: string;
    sqlstate?: string;
    rows?: number;
    params?: unknown[];
    text: string;
  };
  const statements = (app: string) => auditEvents<S>(t).filter((e) => e.type === 'statement' && e.applicationName === app);
  const got = statements('stmt-classes');
  const find = (tag: string) => got.find((s) => s.commandTag === tag);
  assert.equal(find('CREATE TABLE')?.class, 'DDL');
  assert.deepEqual([find('INSERT')?.class, find('INSERT')?.rows, find('INSERT')?.outcome], ['WRITE', 1, 'success']);
  assert.deepEqual([find('SELECT')?.class, find('SELECT')?.rows], ['READ', 1]);
  assert.ok(find('SELECT')?.objects.some((o) => o.name.endsWith('items')));
  assert.equal(find('DO')?.class, 'FUNCTION');
  assert.equal(find('GRANT')?.class, 'ROLE');
  assert.equal(find('SET')?.class, 'MISC_SET');
  assert.equal(find('VACUUM')?.class, 'MISC');
  const failed = got.find((s) => s.outcome === 'failure');
  assert.deepEqual([failed?.sqlstate, failed?.class], ['22012', 'READ']);
  assert.equal(find('UPDATE')?.rows, 1);
  assert.ok(
    got.every((s) => s.params === undefined),
    'no parameters unless asked',
  );
  // psql's simple protocol, two statements in one message: one event each.
  const viaPsql = statements('stmt-psql');
  assert.deepEqual(
    viaPsql.map((s) => [s.commandTag, s.rows]),
    [
      ['SELECT', 1],
      ['DELETE', 1],
    ],
  );

  assert.equal((await t.cli(['server', 'audit', 'update', '--server', 'au1', '--log-parameters', 'Enabled', '--redact', 'secret'])).code, 0);
  const until = Date.now() + 5000;
  while (!t.platform.snapshots.snapshot.audit.get('au1')?.logParameters && Date.now() < until) await sleep(20);
  const d = await connect('stmt-params');
  await d.query({ text: 'insert into items (id, name, secret) values ($1, $2, $3)', values: [2, 'two', 'swordfish'] });
  await d.end();
  await sleep(300);
  const withParams = statements('stmt-params').find((s) => s.commandTag === 'INSERT');
  assert.ok(withParams?.params, 'parameters logged');
  assert.match(JSON.stringify(withParams.params), /"2"|2/);
  assert.match(JSON.stringify(withParams.params), /two/);
  assert.doesNotMatch(JSON.stringify(auditEvents(t)), /swordfish|hunter2/);
});
