// A platform on an external catalog (--catalog-url): while the catalog is down the gateway keeps
// serving on its last snapshot and says so in /health and /metrics; when it returns, changes
// flow again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from 'node:https';
import { readFileSync, rmSync } from 'node:fs';
import { Cluster } from '../../src/engine/cluster.js';
import { serviceAccount } from '../../src/host/os-user.js';
import { allowLoopback, startTestPlatform, tempDir } from '../helpers/platform.js';
import { conninfo, psql } from '../helpers/clients.js';

function getPublic(url: string, ca: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

test('fail-static: the gateway serves on its last snapshot while the catalog is down', async () => {
  const dir = tempDir('pgw-catalog-');
  const catalog = new Cluster({ dataDir: path.join(dir, 'pg'), socketDir: path.join(dir, 'sock'), account: serviceAccount() });
  await catalog.init('catowner', 'Cat-Passw0rd-1');
  await catalog.start();
  const url = `postgresql://catowner:Cat-Passw0rd-1@/postgres?host=${encodeURIComponent(catalog.socketDir)}`;
  const t = await startTestPlatform({ catalogUrl: url });
  try {
    assert.equal((await t.cli(['server', 'create', 'fs1', '--admin-user', 'alice', '--admin-password', 'FailStat1c-pw'])).code, 0);
    await allowLoopback(t, 'fs1');
    const login = () => psql(conninfo(t, { user: 'alice@fs1', sslmode: 'require' }), 'FailStat1c-pw', ['-c', 'select 1']);
    assert.equal((await login()).stdout, '1');
    const ca = readFileSync(t.platform.paths.caCert, 'utf8');
    const health = async () =>
      JSON.parse((await getPublic(`${t.target.url}/health`, ca)).body) as { status: string; catalog: { connected: boolean; failStatic: boolean } };
    assert.equal((await health()).status, 'ok');

    await catalog.stop();
    const end = Date.now() + 10_000;
    while ((await health()).status !== 'degraded' && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    const h = await health();
    assert.deepEqual([h.status, h.catalog.connected, h.catalog.failStatic], ['degraded', false, true]);
    // /metrics takes a token; one that authenticated before the catalog went down still does.
    const metrics = await getPublic(`${t.target.url}/metrics`, ca, t.target.token);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /pgwarden_catalog_connected 0/);
    // The last rules still apply: loopback in, and the server still answers.
    const during = await login();
    assert.equal(during.stdout, '1', during.stderr);

    await catalog.start();
    const back = Date.now() + 15_000;
    while ((await health()).status !== 'ok' && Date.now() < back) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await health()).status, 'ok');
    assert.match((await getPublic(`${t.target.url}/metrics`, ca, t.target.token)).body, /pgwarden_catalog_connected 1/);
    // Changes flow again: deleting the loopback rules locks the client out.
    await t.api('DELETE', '/servers/fs1/firewallRules/loopback-v4');
    await t.api('DELETE', '/servers/fs1/firewallRules/loopback-v6');
    const locked = Date.now() + 5000;
    let r = await login();
    while (r.code === 0 && Date.now() < locked) r = await login();
    assert.match(r.stderr, /no pg_hba\.conf entry for host "127\.0\.0\.1"/);
  } finally {
    await t.stop();
    await catalog.stop();
    catalog.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
