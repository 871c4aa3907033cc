// kill -9 of the whole platform under strict audit durability: every login a client saw
// succeed is in the audit log after a restart, and the log still verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { cliPath, runCli, tempDir } from '../helpers/platform.js';
import { psql } from '../helpers/clients.js';

function up(dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [cliPath, 'up', '--data-dir', dataDir, '--gateway-port', '0', '--gateway-host', '127.0.0.1', '--api-port', '0', '--audit-durability', 'strict'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /gateway: {2}port (\d+)/.exec(out);
      if (m && out.includes('Press Ctrl-C')) resolve({ child, port: Number(m[1]) });
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`up exited ${code}: ${out}`)));
  });
}

test('kill -9 of the platform loses no acknowledged login or statement under strict durability', async () => {
  const root = tempDir('pgw-crash-');
  const dataDir = path.join(root, 'data');
  let current: ChildProcess | null = null;
  try {
    const first = await up(dataDir);
    current = first.child;
    const cli = (...a: string[]) => runCli(['--data-dir', dataDir, ...a]);
    assert.equal((await cli('server', 'create', 'crash-a', '--admin-user', 'alice', '--admin-password', 'Cr4sh-Passw0rd!')).code, 0);
    assert.equal(
      (
        await cli(
          'server',
          'firewall-rule',
          'create',
          '--server',
          'crash-a',
          '--name',
          'lo',
          '--start-ip-address',
          '127.0.0.1',
          '--end-ip-address',
          '127.0.0.1',
        )
      ).code,
      0,
    );
    assert.equal((await cli('server', 'audit', 'update', '--server', 'crash-a', '--classes', 'READ,DDL,ROLE')).code, 0);
    await new Promise((r) => setTimeout(r, 1000));
    const apps: string[] = [];
    for (let i = 0; i < 5; i++) {
      const app = `crash-login-${i}`;
      const r = await psql(`host=127.0.0.1 port=${first.port} user=alice@crash-a dbname=postgres sslmode=require application_name=${app}`, 'Cr4sh-Passw0rd!', [
        '-c',
        'select 1',
      ]);
      assert.equal(r.stdout, '1', r.stderr);
      apps.push(app);
    }
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const second = await up(dataDir);
    current = second.child;
    const verify = await cli('audit', 'verify');
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const found = JSON.parse((await cli('audit', 'search', '--type', 'auth.succeeded', '--limit', '1000', '-o', 'json')).stdout) as {
      event: { applicationName?: string };
    }[];
    const seen = new Set(found.map((h) => h.event.applicationName));
    for (const app of apps) assert.ok(seen.has(app), `${app} survived the crash`);
    // Each `select 1` the client got an answer to was on disk before the answer left the gateway.
    const statements = JSON.parse((await cli('audit', 'search', '--type', 'statement', '--class', 'READ', '--limit', '1000', '-o', 'json')).stdout) as {
      event: { applicationName?: string; commandTag: string };
    }[];
    const answered = new Set(statements.filter((h) => h.event.commandTag === 'SELECT').map((h) => h.event.applicationName));
    for (const app of apps) assert.ok(answered.has(app), `the statement of ${app} survived the crash`);
  } finally {
    if (current && current.exitCode === null) {
      current.kill('SIGINT');
      await new Promise((r) => current!.once('exit', r));
    }
    rmSync(root, { recursive: true, force: true });
  }
});
