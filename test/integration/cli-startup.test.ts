// The CLI loads only what a command needs (issue 17, item 6). A command that talks to the API
// (`pgwarden server list`, `token list`, help) runs on commander and the CLI's own small modules,
// never on the platform and its packages (fastify, pg, libpg-query, pino, @peculiar/x509, koffi,
// pkcs11js, ...); `up` and `gateway` load the platform when they run. Each run below records the
// modules node loads (test/helpers/module-log.ts) against a real platform; no timings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { startTestPlatform, tempDir, type CliResult, type TestPlatform } from '../helpers/platform.js';
import { loadedModules, moduleLogEnv, type LoadedModules } from '../helpers/module-log.js';

let t: TestPlatform;
let logDir: string;
let runs = 0;

before(async () => {
  t = await startTestPlatform();
  logDir = tempDir('pgw-modules-');
});
after(async () => {
  await t?.stop();
  if (logDir) rmSync(logDir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ r: CliResult; loaded: LoadedModules }> {
  const file = path.join(logDir, `run-${++runs}.log`);
  const r = await t.cli(args, moduleLogEnv(file));
  return { r, loaded: loadedModules(file) };
}

/** A thin command: commander is the only package, and the platform's modules stay unloaded. */
function assertThin(args: string[], loaded: LoadedModules): void {
  const what = `pgwarden ${args.join(' ')}`;
  assert.ok(loaded.own.includes('app/main.js'), `${what}: the module log saw the CLI (${loaded.own.join(', ')})`);
  assert.deepEqual(loaded.packages, ['commander'], `${what} loaded packages besides commander`);
  for (const heavy of ['app/platform.js', 'app/gateway-process.js', 'app/up-run.js', 'gateway/gateway.js', 'control/app.js']) {
    assert.ok(!loaded.own.includes(heavy), `${what} loaded ${heavy}`);
  }
}

test('server list runs on commander alone and prints what it always printed', async () => {
  const table = await cli(['server', 'list']);
  assert.equal(table.r.code, 0, table.r.stderr);
  assert.equal(table.r.stdout, '(none)\n');
  assert.equal(table.r.stderr, '');
  assertThin(['server', 'list'], table.loaded);

  const json = await cli(['-o', 'json', 'server', 'list']);
  assert.equal(json.r.code, 0, json.r.stderr);
  assert.deepEqual(JSON.parse(json.r.stdout), []);
  assertThin(['-o', 'json', 'server', 'list'], json.loaded);
});

test('API errors and other API commands stay thin', async () => {
  const missing = await cli(['server', 'show', 'nosuch']);
  assert.equal(missing.r.code, 1);
  assert.equal(missing.r.stdout, '');
  assert.equal(missing.r.stderr, "Error (404 NotFound): Server 'nosuch' was not found.\n");
  assertThin(['server', 'show', 'nosuch'], missing.loaded);

  const tokens = await cli(['token', 'list']);
  assert.equal(tokens.r.code, 0, tokens.r.stderr);
  assert.match(tokens.r.stdout, /^id\s+name\s+role\s+createdAt\n/);
  assert.match(tokens.r.stdout, /owner \(created by up\)\s+Owner/);
  assertThin(['token', 'list'], tokens.loaded);

  const alerts = await cli(['alert', 'list']);
  assert.equal(alerts.r.code, 0, alerts.r.stderr);
  assert.equal(alerts.r.stdout, '(none)\n');
  assertThin(['alert', 'list'], alerts.loaded);
});

test('help, of the CLI and of each command, loads no platform, not even for up', async () => {
  const cases: { args: string[]; usage: string }[] = [
    { args: ['--help'], usage: 'Usage: pgwarden [options] [command]\n' },
    { args: ['help', 'server'], usage: 'Usage: pgwarden server [options] [command]\n' },
    { args: ['server', 'list', '--help'], usage: 'Usage: pgwarden server list [options]\n' },
    { args: ['threat', 'sql-check', '--help'], usage: 'Usage: pgwarden threat sql-check [options]\n' },
  ];
  for (const { args, usage } of cases) {
    const { r, loaded } = await cli(args);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(usage), `${args.join(' ')}: ${r.stdout.split('\n')[0]}`);
    assertThin(args, loaded);
  }
  // `up --help` shows the platform's defaults without loading the platform.
  const up = await cli(['up', '--help']);
  assert.equal(up.r.code, 0, up.r.stderr);
  assert.match(up.r.stdout, /--domain <domain>\s+DNS domain of server host names \(default:\s+"pgwarden\.localhost"\)/);
  assert.match(up.r.stdout, /--gateway-port <port>\s+gateway port \(default: 5432\)/);
  assert.ok(!up.loaded.packages.includes('fastify') && !up.loaded.packages.includes('pg'), `up --help loaded ${up.loaded.packages.join(', ')}`);
  assert.ok(!up.loaded.own.includes('app/platform.js'));
});

test('up loads the platform when it runs (and the module log sees it)', async () => {
  // Fails on its flags after loading the platform, before starting anything.
  const { r, loaded } = await cli(['up', '--tls-cert', '/nonexistent/cert.pem']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'Error: --tls-cert and --tls-key go together.\n');
  assert.ok(loaded.own.includes('app/platform.js'), 'up loaded the platform');
  for (const pkg of ['fastify', 'pg', 'libpg-query', 'pino']) assert.ok(loaded.packages.includes(pkg), `up loaded ${pkg}`);

  const bad = await cli(['gateway', '--pkcs11-module', 'no-equals-sign']);
  assert.equal(bad.r.code, 1);
  assert.equal(bad.r.stderr, "Error: --pkcs11-module takes NAME=PATH (e.g. softhsm=/usr/lib/softhsm/libsofthsm2.so), got 'no-equals-sign'.\n");
});
