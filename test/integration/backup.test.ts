// Encrypted backups and point-in-time restore through the CLI: backup, more rows, a noted time,
// more rows; the restore to that time holds exactly the rows before it, starts with no firewall
// rules, and a backup whose ciphertext was altered is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { allowLoopback, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';

let t: TestPlatform;
const PASSWORD = 'Backup-Passw0rd!';
const sql = (server: string, q: string) => psql(conninfo(t, { user: `owner@${server}`, sslmode: 'require' }), PASSWORD, ['-c', q]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

before(async () => {
  t = await startTestPlatform();
  assert.equal((await t.cli(['server', 'create', 'orders', '--admin-user', 'owner', '--admin-password', PASSWORD])).code, 0);
  await allowLoopback(t, 'orders');
});
after(async () => t?.stop());

test('backup, then restore to a point in time: exactly the rows before it, in a new server without firewall rules', async () => {
  assert.equal(
    (
      await sql(
        'orders',
        "create table items (id int primary key, note text); insert into items select g, 'MARK' || 'ER_' || md5('x') from generate_series(1, 100) g",
      )
    ).code,
    0,
  );
  // The WAL goes to the archive agent through the archive module (no process per segment).
  assert.equal((await sql('orders', "select current_setting('archive_library') || '|' || current_setting('archive_command')")).stdout, 'pgwarden_archive|');
  const b = await t.cli(['backup', 'create', '--server', 'orders', '--output', 'json']);
  assert.equal(b.code, 0, b.stderr);
  const backup = JSON.parse(b.stdout) as { id: string; sizeBytes: number };
  assert.ok(backup.sizeBytes > 1_000_000);
  const list = await t.cli(['backup', 'list', '--server', 'orders']);
  assert.match(list.stdout, new RegExp(backup.id));

  assert.equal((await sql('orders', 'insert into items select g, null from generate_series(101, 200) g')).code, 0);
  await sleep(1100);
  const at = (await sql('orders', 'select to_char(now() at time zone \'utc\', \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\')')).stdout;
  await sleep(1100);
  assert.equal((await sql('orders', 'insert into items select g, null from generate_series(201, 300) g')).code, 0);
  assert.equal((await sql('orders', 'select pg_switch_wal()')).code, 1, 'the administrator is not a superuser');

  const r = await t.cli(['server', 'restore', 'orders-copy', '--source', 'orders', '--restore-point-in-time', at]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /no firewall rules/);
  // The restore returns once this process's gateway decides from the server's Ready state: a
  // client that connects at once is not told that the server is being created.
  assert.equal(t.platform.snapshots.snapshot.servers.get('orders-copy')?.state, 'Ready');
  // No firewall rules: refused, as in the reference service; then allowed.
  const refused = await sql('orders-copy', 'select 1');
  assert.match(refused.stderr, /no pg_hba.conf entry for host "127.0.0.1"/);
  await allowLoopback(t, 'orders-copy');
  assert.equal((await sql('orders-copy', 'select count(*), max(id) from items')).stdout, '200|200');
  assert.equal((await sql('orders', 'select count(*) from items')).stdout, '300');

  // Nothing in the repository is readable: the marker is in the server's files, not in backups.
  const repo = path.join(t.platform.paths.root, 'backups');
  for (const f of files(repo)) assert.equal(readFileSync(f).includes('MARKER_'), false, f);
});

test('a backup chunk with one flipped byte is refused with a clear error, and no server is left', async () => {
  const repo = path.join(t.platform.paths.root, 'backups');
  const base = files(repo)
    .filter((f) => f.endsWith('base.tar.pgwenc'))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  const victim = base.at(-1)!;
  const bytes = readFileSync(victim);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  writeFileSync(victim, bytes);
  const r = await t.cli(['server', 'restore', 'orders-bad', '--source', 'orders']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /failed authentication: its ciphertext was altered, truncated or swapped/);
  const servers = await t.api<{ value: { name: string }[] }>('GET', '/servers');
  assert.equal(
    servers.value.some((s) => s.name === 'orders-bad'),
    false,
  );
});
