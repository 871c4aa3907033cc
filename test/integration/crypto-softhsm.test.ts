// Customer-managed KEKs against a real PKCS#11 module: SoftHSM2 with a token in a temp dir
// (SOFTHSM2_CONF points at a temp config; it is set before the module is initialized, which happens
// at the first provider). The HSM operator's actions (delete, disable, re-enable a key, remove the
// token) are done from another process, as an operator's tool would, through pkcs11js or softhsm2-util.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newDataKey, rewrap } from '../../src/crypto/data-key.js';
import { serverKeyAad, type KekProvider } from '../../src/crypto/kek.js';
import { KeyIntegrityError, KeyUnavailableError } from '../../src/crypto/key-errors.js';
import { createPkcs11Key, Pkcs11KekProvider, type Pkcs11KeyReference } from '../../src/crypto/pkcs11-kek.js';
import { hsmOperator, initSoftHsmToken, SOFTHSM_MODULE } from '../helpers/softhsm.js';

const MODULE = SOFTHSM_MODULE;
const TOKEN = 'pgwarden';
const PIN = '7391-pgw';
const skip = existsSync(MODULE) ? false : `${MODULE} is not installed`;

let dir: string;
let pinFile: string;
const aad = serverKeyAad('orders', 'volume');
const open: KekProvider[] = [];

const base = (): Pick<Pkcs11KeyReference, 'modulePath' | 'tokenLabel' | 'pin'> => ({
  modulePath: MODULE,
  tokenLabel: TOKEN,
  pin: { pinEnv: 'PGW_TEST_HSM_PIN' },
});

async function provider(ref: Omit<Pkcs11KeyReference, 'modulePath' | 'tokenLabel' | 'pin'> & Partial<Pkcs11KeyReference>): Promise<Pkcs11KekProvider> {
  const p = await Pkcs11KekProvider.open({ ...base(), ...ref });
  open.push(p);
  return p;
}

/** An HSM operator's action on a key object, from another process (PIN through the environment). */
const operator = (action: 'delete' | 'disable' | 'enable', label: string, objectClass: 'secret' | 'private'): void =>
  hsmOperator(action, { token: TOKEN, pin: PIN, label, objectClass });

async function notOk(p: KekProvider, reason: RegExp): Promise<void> {
  const status = await p.check();
  assert.equal(status.ok, false, 'check() reports the key unusable');
  assert.match(status.ok ? '' : status.reason, reason);
}

async function unavailable(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof KeyUnavailableError, `expected KeyUnavailableError, got ${String(err)}`);
    assert.match(err.message, message);
    assert.ok(!err.message.includes(PIN), 'the PIN never appears');
    return true;
  });
}

describe('customer-managed KEK in SoftHSM2', { skip }, () => {
  before(async () => {
    dir = initSoftHsmToken(TOKEN, PIN); // before the first C_Initialize
    process.env.PGW_TEST_HSM_PIN = PIN;
    pinFile = path.join(dir, 'hsm.pin');
    await writeFile(pinFile, `${PIN}\n`, { mode: 0o600 });
  });
  after(async () => {
    for (const p of open) await p.close();
    delete process.env.PGW_TEST_HSM_PIN;
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a key that does not exist, naming key, token and module', async () => {
    await unavailable(
      Pkcs11KekProvider.open({ ...base(), keyLabel: 'kek-orders' }),
      /^Customer key 'kek-orders' was not found in token 'pgwarden' \(PKCS#11 module \/usr\/lib\/softhsm\/libsofthsm2\.so\)\.$/,
    );
    await unavailable(Pkcs11KekProvider.open({ ...base(), tokenLabel: 'no-such-token', keyLabel: 'k' }), /token 'no-such-token' is not present/);
    await unavailable(Pkcs11KekProvider.open({ ...base(), modulePath: path.join(dir, 'missing.so'), keyLabel: 'k' }), /cannot be loaded/);
  });

  describe('AES-256 key (CKM_AES_GCM inside the HSM)', () => {
    const material = randomBytes(32); // imported so the "restore from escrow" step can bring the same key back
    let keyId: string;
    let kek: Pkcs11KekProvider;
    let wrapped: Awaited<ReturnType<KekProvider['wrap']>>;
    const dataKey = newDataKey();

    before(async () => {
      keyId = (await createPkcs11Key({ ...base(), keyLabel: 'kek-aes', type: 'aes-256', value: material })).keyId;
      kek = await provider({ keyLabel: 'kek-aes', pin: { pinFile } });
      wrapped = await kek.wrap(dataKey, aad);
    });

    it('wraps, unwraps and checks ok; describe shows the reference and no secret', async () => {
      assert.deepEqual(await kek.unwrap(wrapped, aad), dataKey);
      assert.equal(wrapped.provider, 'pkcs11');
      assert.equal(wrapped.keyRef, kek.keyRef);
      assert.equal((await kek.check()).ok, true);
      const shown = kek.describe();
      assert.equal(shown.kind, 'customer');
      assert.equal(shown.keyLabel, 'kek-aes');
      assert.equal(shown.keyId, keyId);
      assert.equal(shown.mechanism, 'CKM_AES_GCM');
      assert.equal(shown.pinSource, `file:${pinFile}`);
      assert.ok(!JSON.stringify(shown).includes(PIN));
    });

    it('binds to the aad and detects an altered blob (KeyIntegrityError)', async () => {
      await assert.rejects(kek.unwrap(wrapped, serverKeyAad('other', 'volume')), KeyIntegrityError);
      const blob = Buffer.from(wrapped.blob, 'base64');
      blob[20] = (blob[20] ?? 0) ^ 1;
      await assert.rejects(kek.unwrap({ ...wrapped, blob: blob.toString('base64') }, aad), KeyIntegrityError);
    });

    it('creating it again fails, or returns the existing key with ifMissing', async () => {
      await unavailable(createPkcs11Key({ ...base(), keyLabel: 'kek-aes', type: 'aes-256' }), /already exists in token 'pgwarden'/);
      assert.deepEqual(await createPkcs11Key({ ...base(), keyLabel: 'kek-aes', type: 'aes-256', ifMissing: true }), { keyId, created: false });
    });

    it('disabled (CKA_DECRYPT=false): check not ok, unwrap KeyUnavailableError; enabled again: ok', async () => {
      operator('disable', 'kek-aes', 'secret');
      await notOk(kek, /^Customer key 'kek-aes' in token 'pgwarden' is disabled for decryption \(CKA_DECRYPT is false\)/);
      await unavailable(kek.unwrap(wrapped, aad), /disabled for decryption/);
      operator('enable', 'kek-aes', 'secret');
      assert.equal((await kek.check()).ok, true);
      assert.deepEqual(await kek.unwrap(wrapped, aad), dataKey);
    });

    it('PIN refused (changed PIN / wrong PIN file): check not ok; fixed: ok', async () => {
      await writeFile(pinFile, '0000\n');
      await notOk(kek, /token 'pgwarden' refused the PIN \(CKR_PIN_INCORRECT\)/);
      await chmod(pinFile, 0o644);
      await notOk(kek, /PIN file .* is accessible by group or others/);
      await chmod(pinFile, 0o600);
      await writeFile(pinFile, `${PIN}\n`);
      assert.equal((await kek.check()).ok, true);
    });

    it('key object deleted: check not ok, unwrap KeyUnavailableError; restored: ok, old blob unwraps', async () => {
      operator('delete', 'kek-aes', 'secret');
      await notOk(kek, /^Customer key 'kek-aes' was not found in token 'pgwarden' \(PKCS#11 module \/usr\/lib\/softhsm\/libsofthsm2\.so\)\.$/);
      await unavailable(kek.unwrap(wrapped, aad), /was not found in token 'pgwarden'/);
      await unavailable(kek.wrap(newDataKey(), aad), /was not found/);
      await createPkcs11Key({ ...base(), keyLabel: 'kek-aes', type: 'aes-256', value: material, keyId });
      assert.equal((await kek.check()).ok, true);
      assert.deepEqual(await kek.unwrap(wrapped, aad), dataKey);
    });

    it('rotation to a new key label: version 2, old blob rewrapped', async () => {
      await createPkcs11Key({ ...base(), keyLabel: 'kek-aes-2', type: 'aes-256' });
      const v2 = await kek.rotate({ keyLabel: 'kek-aes-2' });
      open.push(v2);
      assert.equal(v2.version, 2);
      const moved = await rewrap(wrapped, aad, kek, v2);
      assert.equal(moved.kekVersion, 2);
      assert.match(moved.keyRef, /object=kek-aes-2/);
      assert.deepEqual(await v2.unwrap(moved, aad), dataKey);
      await assert.rejects(v2.unwrap(wrapped, aad), KeyIntegrityError, 'the new version does not take blobs of the old key');
    });

    it('rotation to a new key under the same label: version 2 with the new CKA_ID', async () => {
      // a second key under an existing label needs its own CKA_ID (without one, creation refuses the duplicate label)
      const fresh = await createPkcs11Key({ ...base(), keyLabel: 'kek-aes', type: 'aes-256', keyId: randomBytes(8).toString('hex') });
      const v2 = await kek.rotate();
      open.push(v2);
      assert.equal(v2.version, 2);
      assert.equal(v2.describe().keyId, fresh.keyId);
      const moved = await rewrap(wrapped, aad, kek, v2);
      assert.deepEqual(await v2.unwrap(moved, aad), dataKey);
      assert.deepEqual(await kek.unwrap(wrapped, aad), dataKey, 'the old key still serves its blobs until it is retired');
      await unavailable(Pkcs11KekProvider.open({ ...base(), keyLabel: 'kek-aes' }), /is ambiguous .* 2 key objects carry this label; give keyId/);
    });
  });

  describe('RSA-2048 key pair (CKM_RSA_PKCS_OAEP)', () => {
    let kek: Pkcs11KekProvider;
    let wrapped: Awaited<ReturnType<KekProvider['wrap']>>;
    const dataKey = newDataKey(64);

    before(async () => {
      await createPkcs11Key({ ...base(), keyLabel: 'kek-rsa', type: 'rsa-2048' });
      // SoftHSM 2.6 implements OAEP with SHA-1 only (SoftHSMv2 issue #474); real HSMs use the SHA-256 default
      kek = await provider({ keyLabel: 'kek-rsa', rsaOaepHash: 'sha1' });
      wrapped = await kek.wrap(dataKey, aad);
    });

    it('wraps, unwraps and checks ok', async () => {
      assert.deepEqual(await kek.unwrap(wrapped, aad), dataKey);
      assert.equal((await kek.check()).ok, true);
      assert.equal(kek.describe().keyType, 'RSA-2048');
      await assert.rejects(kek.unwrap(wrapped, serverKeyAad('orders', 'backup')), KeyIntegrityError);
    });

    it('SHA-256 OAEP: works where the HSM has it; otherwise wrap refuses rather than hand out a blob it cannot unwrap', async () => {
      const sha256 = await provider({ keyLabel: 'kek-rsa' });
      try {
        const w = await sha256.wrap(dataKey, aad);
        assert.deepEqual(await sha256.unwrap(w, aad), dataKey);
      } catch (err) {
        assert.ok(err instanceof KeyUnavailableError, String(err));
        assert.match(err.message, /^Customer key 'kek-rsa' cannot be used: unwrap on token 'pgwarden' failed \(CKR_/);
      }
    });

    it('private key disabled: not ok; enabled: ok', async () => {
      operator('disable', 'kek-rsa', 'private');
      await notOk(kek, /^Customer key 'kek-rsa' in token 'pgwarden' is disabled for decryption/);
      await unavailable(kek.unwrap(wrapped, aad), /disabled for decryption/);
      await unavailable(kek.wrap(newDataKey(), aad), /disabled for decryption/);
      operator('enable', 'kek-rsa', 'private');
      assert.equal((await kek.check()).ok, true);
    });

    it('rotation to another RSA key, then the old private key deleted', async () => {
      await createPkcs11Key({ ...base(), keyLabel: 'kek-rsa-2', type: 'rsa-3072' });
      const v2 = await kek.rotate({ keyLabel: 'kek-rsa-2' });
      open.push(v2);
      const moved = await rewrap(wrapped, aad, kek, v2);
      assert.equal(moved.kekVersion, 2);
      assert.deepEqual(await v2.unwrap(moved, aad), dataKey);
      operator('delete', 'kek-rsa', 'private');
      await notOk(kek, /^Customer key 'kek-rsa' was not found in token 'pgwarden'/);
      await unavailable(kek.unwrap(wrapped, aad), /was not found/);
      assert.equal((await v2.check()).ok, true);
    });
  });

  it('token removed: every key on it reports not ok and refuses to unwrap', async () => {
    await createPkcs11Key({ ...base(), keyLabel: 'kek-last', type: 'aes-256' });
    const kek = await provider({ keyLabel: 'kek-last' });
    const wrapped = await kek.wrap(newDataKey(), aad);
    execFileSync('softhsm2-util', ['--delete-token', '--token', TOKEN], { stdio: 'pipe' });
    await notOk(kek, /^Customer key 'kek-last' cannot be used: token 'pgwarden' is not present/);
    await unavailable(kek.unwrap(wrapped, aad), /token 'pgwarden' is not present/);
  });
});
