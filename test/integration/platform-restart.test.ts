// `up` twice on one data dir, and a restarted platform that keeps every server and setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { Platform } from '../../src/app/platform.js';
import { startTestPlatform, runCli } from '../helpers/platform.js';

const PASSWORD = 'Str0ng-Passw0rd!';

test('a second up on the same data dir refuses; a restarted up keeps servers, settings and data', async () => {
  const t = await startTestPlatform();
  let restarted: Platform | null = null;
  try {
    const second = await runCli(['up', '--data-dir', t.dataDir, '--api-port', '0', '--gateway-port', '0']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /pgwarden is already running on data dir .* \(pid \d+\)/);

    for (const [name, extra] of [
      ['keep-a', []],
      ['keep-b', ['--ssl-enforcement', 'Disabled', '--public-network-access', 'Disabled']],
    ] as const) {
      const r = await t.cli(['server', 'create', name, '--admin-user', 'owner1', '--admin-password', PASSWORD, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await t.cli(['server', 'stop', 'keep-b'])).code, 0);
    const idA = t.platform.snapshots.snapshot.servers.get('keep-a')!.id;
    let c = new pg.Client({ host: t.platform.paths.serverSocketDir(idA), user: 'owner1', password: PASSWORD, database: 'postgres' });
    await c.connect();
    await c.query("create table kept as select 'still here' as v");
    await c.end();

    const options = t.platform.options;
    await t.platform.stop();
    // No postmaster survives a clean stop.
    for (const dir of [t.platform.paths.serverData(idA), t.platform.paths.catalogData]) {
      assert.throws(() => readFileSync(`${dir}/postmaster.pid`), /ENOENT/);
    }

    restarted = new Platform(options);
    await restarted.start();
    const list = JSON.parse((await runCli(['--data-dir', t.dataDir, 'server', 'list', '-o', 'json'])).stdout) as Record<string, string>[];
    const byName = new Map(list.map((s) => [s.name, s]));
    assert.equal(byName.get('keep-a')?.state, 'Ready');
    assert.equal(byName.get('keep-b')?.state, 'Stopped');
    assert.equal(byName.get('keep-b')?.sslEnforcement, 'Disabled');
    assert.equal(byName.get('keep-b')?.publicNetworkAccess, 'Disabled');
    assert.ok(restarted.servers.isRunning(idA));
    c = new pg.Client({ host: restarted.paths.serverSocketDir(idA), user: 'owner1', password: PASSWORD, database: 'postgres' });
    await c.connect();
    assert.equal((await c.query('select v from kept')).rows[0].v, 'still here');
    await c.end();
  } finally {
    if (restarted) await restarted.stop();
    await t.stop().catch(() => undefined);
  }
});

test('stopping the platform ends open client sessions instead of waiting for them', async () => {
  const { allowLoopback } = await import('../helpers/platform.js');
  const t = await startTestPlatform();
  let stopped = false;
  try {
    assert.equal((await t.cli(['server', 'create', 'busy-1', '--admin-user', 'owner1', '--admin-password', PASSWORD])).code, 0);
    await allowLoopback(t, 'busy-1');
    const c = new pg.Client({
      host: '127.0.0.1',
      port: t.platform.gateway.port,
      user: 'owner1@busy-1',
      password: PASSWORD,
      database: 'postgres',
      ssl: { rejectUnauthorized: false },
    });
    c.on('error', () => undefined);
    await c.connect();
    const started = Date.now();
    await t.platform.stop();
    stopped = true;
    assert.ok(Date.now() - started < 10_000, `stop took ${Date.now() - started} ms`);
    await assert.rejects(c.query('select 1'));
  } finally {
    if (!stopped) await t.platform.stop();
    await t.stop().catch(() => undefined);
  }
});
