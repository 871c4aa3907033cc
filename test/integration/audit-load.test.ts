// Statement audit under load: pgbench (TPC-B-like, 16 clients) through the gateway with every
// class on: each statement pgbench executed is in the audit log exactly once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { allowLoopback, auditEvents, startTestPlatform } from '../helpers/platform.js';

function pgbench(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('pgbench', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 240_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, out: `${stdout}\n${stderr}` });
    });
  });
}

test('16 pgbench clients with all classes on: nothing lost, nothing doubled', async () => {
  const t = await startTestPlatform();
  try {
    const PASSWORD = 'L0ad-Passw0rd!';
    assert.equal((await t.cli(['server', 'create', 'load1', '--admin-user', 'bench', '--admin-password', PASSWORD])).code, 0);
    await allowLoopback(t, 'load1');
    assert.equal((await t.cli(['server', 'audit', 'update', '--server', 'load1', '--classes', 'READ,WRITE,FUNCTION,ROLE,DDL,MISC,MISC_SET'])).code, 0);
    const end = Date.now() + 5000;
    while (!t.platform.snapshots.snapshot.audit.get('load1')?.classes.includes('MISC') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const env = {
      PGPASSWORD: PASSWORD,
      PGSSLMODE: 'require',
      PGHOST: '127.0.0.1',
      PGPORT: String(t.platform.gateway.port),
      PGUSER: 'bench@load1',
      PGDATABASE: 'postgres',
    };
    const init = await pgbench(['-i', '-s', '1', '-q'], env);
    assert.equal(init.code, 0, init.out);
    const clients = 16;
    const perClient = 40;
    const run = await pgbench(['-c', String(clients), '-j', '2', '-t', String(perClient), '-n'], env);
    assert.equal(run.code, 0, run.out);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(run.out)?.[1]);
    assert.equal(processed, clients * perClient, run.out);
    await new Promise((r) => setTimeout(r, 500));
    const statements = auditEvents<{ type: string; text: string; applicationName?: string; outcome: string }>(t).filter(
      (e) => e.type === 'statement' && e.applicationName === 'pgbench',
    );
    const count = (re: RegExp) => statements.filter((s) => re.test(s.text)).length;
    // TPC-B-like: BEGIN, 3 UPDATEs, 1 SELECT, 1 INSERT, END per transaction.
    assert.equal(count(/^UPDATE pgbench_accounts/), processed);
    assert.equal(count(/^UPDATE pgbench_tellers/), processed);
    assert.equal(count(/^UPDATE pgbench_branches/), processed);
    assert.equal(count(/^SELECT abalance FROM pgbench_accounts/), processed);
    assert.equal(count(/^INSERT INTO pgbench_history/), processed);
    assert.equal(count(/^BEGIN/), processed);
    assert.equal(count(/^END/), processed);
    assert.ok(statements.every((s) => s.outcome === 'success'));
  } finally {
    await t.stop();
  }
});
