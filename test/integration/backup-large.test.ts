// A 1 GiB database backed up and restored through the CLI: both finish, the CLI shows progress on
// stderr (phase, MiB done of the estimate, percent), and the restored copy holds every row.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { allowLoopback, startTestPlatform, type TestPlatform } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';

let t: TestPlatform;
const PASSWORD = 'Large-Passw0rd!';
const ROWS = 1_150_000; // 960-byte rows, stored uncompressed (below the TOAST threshold): ~1.1 GiB
const sql = (server: string, q: string) => psql(conninfo(t, { user: `owner@${server}`, sslmode: 'require' }), PASSWORD, ['-c', q], 600_000);

before(async () => {
  t = await startTestPlatform();
  assert.equal((await t.cli(['server', 'create', 'large', '--admin-user', 'owner', '--admin-password', PASSWORD])).code, 0);
  await allowLoopback(t, 'large');
});
after(async () => t?.stop());

test('a 1 GiB database: backup and restore complete with progress on the CLI, every row restored', async () => {
  const fill = await sql('large', `create table big as select g as id, repeat(md5(g::text), 30) as v from generate_series(1, ${ROWS}) g`);
  assert.equal(fill.code, 0, fill.stderr);
  const size = Number((await sql('large', 'select pg_database_size(current_database())')).stdout);
  assert.ok(size > 1024 ** 3, `the database holds ${size} bytes`);

  // A gigabyte on a loaded 2-core machine can take minutes: the CLI follows it as long as it runs.
  const b = await t.cli(['backup', 'create', '--server', 'large', '--output', 'json'], {}, 600_000);
  assert.equal(b.code, 0, b.stderr);
  assert.ok(Number((JSON.parse(b.stdout) as { sizeBytes: number }).sizeBytes) > 1024 ** 3);
  const progress = b.stderr.split('\n').filter((l) => /MiB/.test(l));
  assert.ok(progress.length >= 3, `progress lines on stderr:\n${b.stderr}`);
  assert.match(b.stderr, /^backup: \d+\.\d of ~\d+\.\d MiB \(\d+%\)$/m);

  const r = await t.cli(['server', 'restore', 'large-copy', '--source', 'large'], {}, 600_000);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.split('\n').filter((l) => /MiB/.test(l)).length >= 3, `restore progress:\n${r.stderr}`);
  await allowLoopback(t, 'large-copy');
  const restored = await sql('large-copy', 'select count(*), sum(length(v)) from big');
  assert.equal(restored.stdout, `${ROWS}|${ROWS * 960}`, restored.stderr);
});
