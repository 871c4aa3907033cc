// psycopg 3 (Python) and pgJDBC (Java) through the gateway, in each pool mode of a server (issue
// 18): both switch to named server-side prepared statements after a few executions, run a
// transaction, meet an error and go on. Installed by scripts/install-clients.sh into .clients/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { allowLoopback, repoRoot, startTestPlatform, until, type TestPlatform } from '../helpers/platform.js';
import { gatewayClient, gatewayPort } from '../helpers/clients.js';

let t: TestPlatform;
const SERVER = 'cp1';
const PASSWORD = 'Clients-Passw0rd!';
const clients = path.join(repoRoot, '.clients');

before(async () => {
  t = await startTestPlatform();
  const r = await t.cli(['server', 'create', SERVER, '--admin-user', 'alice', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, SERVER);
  const c = await gatewayClient(t, { server: SERVER, user: 'alice', password: PASSWORD });
  await c.query('create table client_rows (client text not null)');
  await c.end();
});
after(async () => {
  await t?.stop();
});

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function psycopg(): Promise<Record<string, unknown>> {
  const conninfo = `host=127.0.0.1 port=${gatewayPort(t)} user=alice@${SERVER} dbname=postgres sslmode=require connect_timeout=10`;
  const r = await run('python3', [path.join(repoRoot, 'test/clients/client.py'), conninfo], { PYTHONPATH: path.join(clients, 'py'), PGPASSWORD: PASSWORD });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function pgjdbc(): Promise<Record<string, unknown>> {
  const jar = readdirSync(path.join(clients, 'jdbc')).find((n) => /^postgresql-.*\.jar$/.test(n));
  assert.ok(jar, 'pgJDBC is installed (scripts/install-clients.sh)');
  const url = `jdbc:postgresql://127.0.0.1:${gatewayPort(t)}/postgres`;
  const r = await run('java', ['-cp', path.join(clients, 'jdbc', jar), path.join(repoRoot, 'test/clients/Client.java'), url, `alice@${SERVER}`], {
    PGPASSWORD: PASSWORD,
  });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function poolMode(mode: string): Promise<void> {
  if (t.platform.snapshots.snapshot.servers.get(SERVER)?.poolMode === mode) return;
  const u = await t.cli(['server', 'update', SERVER, '--pool-mode', mode, '--pool-size', '2']);
  assert.equal(u.code, 0, u.stderr);
  await until('the pool mode in the gateway snapshot', async () => t.platform.snapshots.snapshot.servers.get(SERVER)?.poolMode === mode);
}

const doubled = [0, 2, 4, 6, 8, 10, 12, 14];

for (const mode of ['none', 'session', 'transaction']) {
  test(`psycopg and pgJDBC with pool mode ${mode}: prepared statements, a transaction, an error and after`, { timeout: 180_000 }, async () => {
    await poolMode(mode);
    for (let round = 0; round < 2; round++) {
      // Twice: in session mode the second run gets the first one's server connection, reset.
      const [py, java] = await Promise.all([psycopg(), pgjdbc()]);
      for (const out of [py, java]) {
        assert.deepEqual(out.doubled, doubled);
        assert.equal(out.user, 'alice');
        assert.equal(out.error, '22012');
        assert.equal(out.after, 42);
      }
      assert.ok(Number(py.inTransaction) >= 1);
      assert.ok(Number(java.inTransaction) >= 1);
    }
  });
}
