// Encryption at rest end to end: a marker value (built in SQL so no statement holds it) is read
// through psql and found in no file of the platform's data dir (find -xdev), no raw volume image
// and no backup, while the same check finds it on a control without encryption; the platform
// restarts with its data and no volume key in clear anywhere; a customer key in SoftHSM2 that
// disappears turns its server Inaccessible (exact error, alert, volume locked) and revalidate
// brings it back with its data; rotation leaves the old key unneeded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { allowLoopback, runCli, startTestPlatform, tempDir, until, type TestPlatform } from '../helpers/platform.js';
import { SOFTHSM_MODULE as MODULE, SOFTHSM_MODULE_NAME, SOFTHSM_MODULES, hsmOperator, initSoftHsmToken } from '../helpers/softhsm.js';
import { conninfo, gatewayPort, psql } from '../helpers/clients.js';
import { fileContains, filesContaining } from '../helpers/scan.js';
import { Platform } from '../../src/app/platform.js';
import { Cluster } from '../../src/engine/cluster.js';
import { KeysRepo } from '../../src/catalog/keys-repo.js';
import { SystemKeyRoot, createPkcs11Key, serverKeyAad } from '../../src/crypto/index.js';

const TOKEN = 'pgwarden-test';
const PIN = '5183-pgw';
const PASSWORD = 'Vault-Passw0rd!';
const MARKER = Buffer.from(`MARKER_${createHash('md5').update('x').digest('hex')}`);
const INACCESSIBLE = 'Server is inaccessible: its encryption key cannot be accessed.';

let t: TestPlatform;
let hsmDir: string;
let restarted: Platform | null = null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sql = (server: string, q: string) => psql(conninfo(t, { user: `owner@${server}`, sslmode: 'require' }), PASSWORD, ['-c', q]);
const serverId = (name: string) => t.platform.snapshots.snapshot.servers.get(name)!.id;
const mounted = (dir: string) =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === dir);

const operator = (action: 'delete' | 'disable' | 'enable', label: string) => hsmOperator(action, { token: TOKEN, pin: PIN, label });
const deleteKey = (label: string) => operator('delete', label);

async function createServer(name: string): Promise<void> {
  const r = await t.cli(['server', 'create', name, '--admin-user', 'owner', '--admin-password', PASSWORD]);
  assert.equal(r.code, 0, r.stderr);
  await allowLoopback(t, name);
}

/** Connects through the gateway with node-postgres; resolves to the error it gets, if any. */
async function connectError(server: string): Promise<{ code?: string; message: string } | null> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: gatewayPort(t),
    user: `owner@${server}`,
    password: PASSWORD,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
  });
  // A server stopping just after the login ends the session (57P01) as an 'error' event, which
  // must not be left unhandled: that connection counts as served here.
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return null;
  } catch (err) {
    return err as { code?: string; message: string };
  }
}

before(async () => {
  hsmDir = initSoftHsmToken(TOKEN, PIN);
  t = await startTestPlatform({ keyCheckIntervalMs: 1000, volumeSizeBytes: 2 * 1024 ** 3, pkcs11Modules: SOFTHSM_MODULES });
});

after(async () => {
  await restarted?.stop();
  await t?.stop();
  execFileSync('rm', ['-rf', hsmDir]);
});

test('a marker is readable through psql and in no file, raw volume image or backup; a control without encryption shows it', async () => {
  await createServer('vault');
  assert.equal((await sql('vault', "create table secrets as select 'MARK' || 'ER_' || md5('x') as v from generate_series(1, 500)")).code, 0);
  assert.equal((await sql('vault', 'select distinct v from secrets')).stdout, MARKER.toString());
  const maint = await t.platform.servers.connect(serverId('vault'));
  await maint.query('checkpoint');
  await maint.end();
  assert.equal((await t.cli(['backup', 'create', '--server', 'vault'])).code, 0);

  const keys = await t.api<{ type: string; volume: { backend: string; open: boolean } }>('GET', '/servers/vault/keys');
  assert.equal(keys.type, 'SystemManaged');
  assert.equal(keys.volume.open, true);
  // Every regular file on the data dir's filesystem: catalog, audit and server images (read where
  // they hold data), backups, secrets, logs. The mounted volumes are not crossed.
  assert.deepEqual(filesContaining(t.platform.paths.root, [MARKER]), []);

  // Controls, so the check can fail: the same scan finds the marker written by a PostgreSQL on
  // plain storage under the same dir, and in a volume image where the filesystem is not encrypted.
  mkdirSync(path.join(t.platform.paths.root, 'control-plain'), { mode: 0o711 });
  const control = new Cluster({
    dataDir: path.join(t.platform.paths.root, 'control-plain', 'pg'),
    socketDir: path.join(t.platform.paths.runDir, 'ctl'),
    account: await t.platform.accounts.catalog(),
    settings: {},
  });
  await control.init('ctl', 'ctl-password');
  await control.start();
  try {
    const c = new pg.Client({ host: control.socketDir, user: 'ctl', password: 'ctl-password', database: 'postgres' });
    await c.connect();
    await c.query("create table secrets as select 'MARK' || 'ER_' || md5('x') as v; checkpoint");
    await c.end();
  } finally {
    await control.stop();
  }
  const found = filesContaining(t.platform.paths.root, [MARKER]);
  assert.ok(found.length > 0 && found.every((f) => f.includes('/control-plain/')), `the control is found: ${found.join(', ')}`);
  control.destroy();
  // The root of a volume's filesystem is not the encrypted directory: a file there reaches the image in clear.
  const volume = t.platform.paths.serverVolume(serverId('vault'));
  // (Another needle: deleted blocks keep their bytes, and the marker must stay absent.)
  const needle = Buffer.from(`CONTROL_${randomBytes(8).toString('hex')}`);
  writeFileSync(path.join(volume, 'control.txt'), needle);
  execFileSync('sync');
  const image = path.join(t.platform.paths.volumesDir, `server-${serverId('vault')}.ext4`);
  if (keys.volume.backend === 'fscrypt') assert.equal(fileContains(image, [needle]), true, 'the image scan sees clear data');
  execFileSync('rm', [path.join(volume, 'control.txt')]);
});

test('the platform restarts with its data; the volume keys are in no file in clear; locked volumes are unmounted', async () => {
  const id = serverId('vault');
  const wrapped = (await new KeysRepo(t.platform.db).volume(id))!.wrappedKey;
  const root = await SystemKeyRoot.load(path.join(t.platform.paths.secretsDir, 'kek-root.key'));
  const key = await root.kek(String(id), wrapped.kekVersion).unwrap(wrapped, serverKeyAad(String(id), 'volume'));
  const forms = [key, Buffer.from(key.toString('hex')), Buffer.from(key.toString('base64'))];
  const options = t.platform.options;
  await t.platform.stop();
  for (const dir of [t.platform.paths.serverVolume(id), t.platform.paths.catalogVolume, t.platform.paths.auditVolume]) {
    assert.equal(mounted(dir), false, `${dir} is locked and unmounted while the platform is down`);
  }
  assert.deepEqual(filesContaining(t.platform.paths.root, forms), [], 'no volume key in clear');
  assert.deepEqual(filesContaining(t.platform.paths.root, [MARKER]), [], 'no marker');

  restarted = new Platform(options);
  await restarted.start();
  (t as { platform: Platform }).platform = restarted;
  const cfg = JSON.parse(readFileSync(restarted.paths.clientConfig, 'utf8')) as { apiUrl: string };
  (t.target as { url: string }).url = cfg.apiUrl;
  assert.equal((await sql('vault', 'select count(*), min(v) from secrets')).stdout, `500|${MARKER.toString()}`);
  assert.equal(mounted(restarted.paths.serverVolume(id)), true);
});

test('customer key in SoftHSM2: key deleted -> Inaccessible (exact error, alert, volume locked); restored + revalidate -> Ready; rotate -> old key not needed', async () => {
  const material = randomBytes(32);
  const pinFile = path.join(hsmDir, 'pin');
  writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
  const { keyId } = await createPkcs11Key({ modulePath: MODULE, tokenLabel: TOKEN, keyLabel: 'kek-1', pin: { pinFile }, type: 'aes-256', value: material });
  await createServer('hsm1');
  assert.equal((await sql('hsm1', 'create table kept as select g as id from generate_series(1, 42) g')).code, 0);

  // The PIN comes from the environment, never from argv.
  const noPin = await t.cli(['server', 'key', 'create', '--server', 'hsm1', '--pkcs11-module', SOFTHSM_MODULE_NAME, '--token', TOKEN, '--key-label', 'kek-1'], {
    PGWARDEN_PKCS11_PIN: '',
  });
  assert.notEqual(noPin.code, 0);
  assert.match(noPin.stderr, /PGWARDEN_PKCS11_PIN or in a file with --pin-file/);
  const wrongLabel = await t.cli(['server', 'key', 'create', '--server', 'hsm1', '--pkcs11-module', MODULE, '--token', TOKEN, '--key-label', 'missing'], {
    PGWARDEN_PKCS11_PIN: PIN,
  });
  assert.notEqual(wrongLabel.code, 0);
  assert.match(wrongLabel.stderr, /Customer key 'missing' was not found in token 'pgwarden-test'/);
  const set = await t.cli(
    ['server', 'key', 'create', '--server', 'hsm1', '--pkcs11-module', SOFTHSM_MODULE_NAME, '--token', TOKEN, '--key-label', 'kek-1', '-o', 'json'],
    { PGWARDEN_PKCS11_PIN: PIN },
  );
  assert.equal(set.code, 0, set.stderr);
  const view = JSON.parse(set.stdout) as { type: string; kekVersion: number; keyRef: string; status: string; pkcs11: { keyId: string; module: string } };
  assert.equal(view.type, 'CustomerManaged');
  assert.equal(view.pkcs11.module, SOFTHSM_MODULE_NAME, 'the key names its configured module, not a path');
  assert.equal(view.kekVersion, 2);
  assert.equal(view.pkcs11.keyId, keyId);
  assert.match(view.keyRef, /object=kek-1/);
  assert.equal((await t.cli(['backup', 'create', '--server', 'hsm1'])).code, 0);
  // A restart of the server unwraps its volume key in the HSM.
  assert.equal((await t.cli(['server', 'stop', 'hsm1'])).code, 0);
  assert.equal((await t.cli(['server', 'start', 'hsm1'])).code, 0);
  assert.equal((await sql('hsm1', 'select count(*) from kept')).stdout, '42');

  deleteKey('kek-1');
  await until('Inaccessible', async () => (await t.api<{ state: string }>('GET', '/servers/hsm1')).state === 'Inaccessible');
  // The gateway follows the catalog's state within a second (its snapshot); a connection that
  // slips in before is ended by the server's stop (57P01), never served on.
  const refused = await until(
    'the gateway to refuse with 08004',
    async () => {
      const err = await connectError('hsm1');
      if (err && err.code !== '08004' && err.code !== '57P01' && err.code !== '57P03') assert.fail(`unexpected ${err.code}: ${err.message}`);
      return err?.code === '08004' && err;
    },
    5_000,
  );
  assert.equal(refused?.code, '08004');
  assert.equal(refused?.message, INACCESSIBLE);
  // The state changes first (the gateway refuses at once), then the server stops and its volume locks.
  // The key leaves the kernel first (the API's volume.open turns false), the unmount follows.
  const locked = await until('the volume to lock and unmount', async () => {
    const k = await t.api<{ status: string; reason: string; volume: { open: boolean } }>('GET', '/servers/hsm1/keys');
    return !k.volume.open && !mounted(t.platform.paths.serverVolume(serverId('hsm1'))) && k;
  });
  assert.equal(locked.status, 'Unavailable');
  assert.match(locked.reason, /Customer key 'kek-1' was not found in token 'pgwarden-test'/);
  assert.equal(locked.volume.open, false);
  assert.equal(mounted(t.platform.paths.serverVolume(serverId('hsm1'))), false);
  const alerts = await until('the alert', async () => {
    const r = await t.api<{ value: { type: string; severity: string }[] }>('GET', '/servers/hsm1/alerts');
    return r.value.find((a) => a.type === 'EncryptionKeyUnavailable');
  });
  assert.equal(alerts.severity, 'High');
  const still = await t.apiStatus('POST', '/servers/hsm1/keys/revalidate', {});
  assert.equal(still.status, 409);
  assert.match((still.body as { error: { message: string } }).error.message, /^Server 'hsm1' stays Inaccessible: Customer key 'kek-1' was not found/);

  // The key comes back (from escrow): revalidate, and the data is intact.
  await createPkcs11Key({ modulePath: MODULE, tokenLabel: TOKEN, keyLabel: 'kek-1', pin: { pinFile }, type: 'aes-256', value: material, keyId });
  const back = await t.cli(['server', 'key', 'revalidate', '--server', 'hsm1', '-o', 'json']);
  assert.equal(back.code, 0, back.stderr);
  assert.equal((JSON.parse(back.stdout) as { status: string }).status, 'Valid');
  assert.equal((await t.api<{ state: string }>('GET', '/servers/hsm1')).state, 'Ready');
  // The revalidation returns once this process's gateway decides from Ready.
  assert.equal(t.platform.snapshots.snapshot.servers.get('hsm1')?.state, 'Ready');
  await until('the gateway to see Ready', async () => (await connectError('hsm1')) === null);
  assert.equal((await sql('hsm1', 'select count(*) from kept')).stdout, '42');

  // Rotation to another key in the token; the old one is then deleted and is not missed.
  await createPkcs11Key({ modulePath: MODULE, tokenLabel: TOKEN, keyLabel: 'kek-2', pin: { pinFile }, type: 'aes-256' });
  const rotated = await t.cli(['server', 'key', 'rotate', '--server', 'hsm1', '--key-label', 'kek-2', '-o', 'json']);
  assert.equal(rotated.code, 0, rotated.stderr);
  const r = JSON.parse(rotated.stdout) as { kekVersion: number; keyRef: string };
  assert.equal(r.kekVersion, 3);
  assert.match(r.keyRef, /object=kek-2/);
  const backups = JSON.parse((await t.cli(['backup', 'list', '--server', 'hsm1', '-o', 'json'])).stdout) as { kek: { provider: string; version: number } }[];
  assert.ok(backups.length > 0 && backups.every((b) => b.kek.provider === 'pkcs11' && b.kek.version === 3), 'backup keys re-wrapped');
  deleteKey('kek-1');
  assert.equal((await t.cli(['server', 'stop', 'hsm1'])).code, 0);
  assert.equal((await t.cli(['server', 'start', 'hsm1'])).code, 0);
  await sleep(2500); // more than two check intervals
  assert.equal((await t.api<{ state: string }>('GET', '/servers/hsm1')).state, 'Ready');
  assert.equal((await sql('hsm1', 'select count(*) from kept')).stdout, '42');
  assert.equal(existsSync(path.join(t.platform.paths.secretsDir, `server-${serverId('hsm1')}.pin`)), true);
});

test('system-managed key rotation re-wraps without touching data', async () => {
  const before = await t.api<{ kekVersion: number }>('GET', '/servers/vault/keys');
  const r = await runCli(['--data-dir', t.dataDir, 'server', 'key', 'rotate', '--server', 'vault', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { kekVersion: number }).kekVersion, before.kekVersion + 1);
  assert.equal((await t.cli(['server', 'stop', 'vault'])).code, 0);
  assert.equal((await t.cli(['server', 'start', 'vault'])).code, 0);
  assert.equal((await sql('vault', 'select count(*) from secrets')).stdout, '500');
});

test('up --fips refuses to start when the OpenSSL FIPS provider is not configured, and says how to set it up', async () => {
  const dir = tempDir('pgw-fips-');
  try {
    const r = await runCli(['up', '--data-dir', path.join(dir, 'data'), '--fips', '--api-port', '0', '--gateway-port', '0', '--gateway-host', '127.0.0.1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /FIPS/);
    assert.match(r.stderr, /fipsinstall/);
    assert.equal(existsSync(path.join(dir, 'data')), false, 'nothing was created');
  } finally {
    execFileSync('rm', ['-rf', dir]);
  }
});

test('customer key disabled in the token (CKA_DECRYPT false) -> Inaccessible; enabled again + revalidate -> Ready', async () => {
  const pinFile = path.join(hsmDir, 'pin');
  await createPkcs11Key({ modulePath: MODULE, tokenLabel: TOKEN, keyLabel: 'kek-d', pin: { pinFile }, type: 'aes-256' });
  await createServer('hsm2');
  assert.equal((await sql('hsm2', 'create table kept as select 7 as v')).code, 0);
  const set = await t.cli(['server', 'key', 'create', '--server', 'hsm2', '--pkcs11-module', SOFTHSM_MODULE_NAME, '--token', TOKEN, '--key-label', 'kek-d'], {
    PGWARDEN_PKCS11_PIN: PIN,
  });
  assert.equal(set.code, 0, set.stderr);
  operator('disable', 'kek-d');
  await until('Inaccessible', async () => (await t.api<{ state: string }>('GET', '/servers/hsm2')).state === 'Inaccessible');
  const locked = await until('the volume to lock', async () => {
    const k = await t.api<{ reason: string; volume: { open: boolean } }>('GET', '/servers/hsm2/keys');
    return !k.volume.open && k;
  });
  assert.match(locked.reason, /disabled for decryption/);
  const still = await t.apiStatus('POST', '/servers/hsm2/keys/revalidate', {});
  assert.equal(still.status, 409);
  assert.match((still.body as { error: { message: string } }).error.message, /^Server 'hsm2' stays Inaccessible: .*disabled for decryption/);
  operator('enable', 'kek-d');
  const back = await t.apiStatus('POST', '/servers/hsm2/keys/revalidate', {});
  assert.equal(back.status, 200, JSON.stringify(back.body));
  assert.equal((await t.api<{ state: string }>('GET', '/servers/hsm2')).state, 'Ready');
  await until('the gateway to see Ready', async () => (await connectError('hsm2')) === null);
  assert.equal((await sql('hsm2', 'select v from kept')).stdout, '7');
});
