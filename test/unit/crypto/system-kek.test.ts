import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newDataKey, rewrap, withKey } from '../../../src/crypto/data-key.js';
import { serverKeyAad, type WrappedKey } from '../../../src/crypto/kek.js';
import { KeyIntegrityError, KeyUnavailableError, RootKeyFileError } from '../../../src/crypto/key-errors.js';
import { SystemKeyRoot } from '../../../src/crypto/system-kek.js';

let dir: string;
let root: SystemKeyRoot;
const aad = serverKeyAad('s1', 'volume');

async function rejectsWith(promise: Promise<unknown>, errorClass: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof errorClass, `expected ${errorClass.name}, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-kek-'));
  root = await SystemKeyRoot.load(path.join(dir, 'keys', 'root.key'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('platform root key file', () => {
  it('is created with 32 random bytes, mode 0600, in a 0700 directory', async () => {
    const info = await stat(path.join(dir, 'keys', 'root.key'));
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal(info.size, 32);
    assert.equal((await stat(path.join(dir, 'keys'))).mode & 0o777, 0o700);
  });

  it('is loaded again to the same key (a blob from one load unwraps after the next)', async () => {
    const wrapped = await root.kek('s1').wrap(newDataKey(), aad);
    const again = await SystemKeyRoot.load(path.join(dir, 'keys', 'root.key'), { create: false });
    assert.equal((await again.kek('s1').unwrap(wrapped, aad)).length, 32);
  });

  it('is refused when group or others can read it, with a message saying what to do', async () => {
    const file = path.join(dir, 'open.key');
    await writeFile(file, Buffer.alloc(32, 1), { mode: 0o600 });
    await chmod(file, 0o640);
    await rejectsWith(SystemKeyRoot.load(file), RootKeyFileError, /accessible by group or others \(mode 0640\); run chmod 600/);
    await chmod(file, 0o604);
    await rejectsWith(SystemKeyRoot.load(file), RootKeyFileError, /mode 0604/);
  });

  it('is refused when missing (create: false) or of the wrong size', async () => {
    await rejectsWith(SystemKeyRoot.load(path.join(dir, 'absent.key'), { create: false }), RootKeyFileError, /does not exist/);
    const short = path.join(dir, 'short.key');
    await writeFile(short, Buffer.alloc(16), { mode: 0o600 });
    await rejectsWith(SystemKeyRoot.load(short), RootKeyFileError, /holds 16 bytes, not 32/);
  });

  it('check() reports a removed or replaced root file, ok otherwise', async () => {
    const file = path.join(dir, 'checked.key');
    const r = await SystemKeyRoot.load(file);
    const kek = r.kek('s9');
    assert.equal((await kek.check()).ok, true);
    await unlink(file);
    const gone = await kek.check();
    assert.equal(gone.ok, false);
    assert.match(gone.ok ? '' : gone.reason, /does not exist; the key in memory still works until the platform restarts/);
    await writeFile(file, Buffer.alloc(32, 7), { mode: 0o600 });
    const replaced = await kek.check();
    assert.match(replaced.ok ? '' : replaced.reason, /no longer holds the key in use/);
  });
});

describe('system KEK wrap / unwrap', () => {
  it('round-trips 32- and 64-byte data keys; the blob is nonce|ciphertext|tag', async () => {
    const kek = root.kek('s1');
    for (const size of [32, 64] as const) {
      const dataKey = newDataKey(size);
      const wrapped = await kek.wrap(dataKey, aad);
      assert.deepEqual(
        { provider: wrapped.provider, kekVersion: wrapped.kekVersion, keyRef: wrapped.keyRef },
        { provider: 'system', kekVersion: 1, keyRef: 'system:server/s1' },
      );
      assert.equal(Buffer.from(wrapped.blob, 'base64').length, 12 + size + 16);
      assert.deepEqual(await kek.unwrap(wrapped, aad), dataKey);
    }
    assert.deepEqual(kek.describe(), { kind: 'system', provider: 'system', keyRef: 'system:server/s1', version: 1, algorithm: 'HKDF-SHA-256 + AES-256-GCM' });
  });

  it('binds the blob to its purpose: another aad fails as KeyIntegrityError', async () => {
    const kek = root.kek('s1');
    const wrapped = await kek.wrap(newDataKey(), aad);
    await rejectsWith(
      kek.unwrap(wrapped, serverKeyAad('s1', 'backup')),
      KeyIntegrityError,
      /failed authentication: the blob or its purpose \(aad\) was altered/,
    );
  });

  it('binds the blob to its server: another server cannot unwrap it, even with a forged keyRef', async () => {
    const wrapped = await root.kek('s1').wrap(newDataKey(), aad);
    const other = root.kek('s2');
    await rejectsWith(other.unwrap(wrapped, aad), KeyIntegrityError, /belongs to "system:server\/s1", not to system:server\/s2/);
    const forged: WrappedKey = { ...wrapped, keyRef: 'system:server/s2' };
    await rejectsWith(other.unwrap(forged, aad), KeyIntegrityError, /failed authentication/);
  });

  it('detects an altered blob', async () => {
    const kek = root.kek('s1');
    const wrapped = await kek.wrap(newDataKey(), aad);
    const blob = Buffer.from(wrapped.blob, 'base64');
    for (const at of [0, 20, blob.length - 1]) {
      const bad = Buffer.from(blob);
      bad[at] = (bad[at] ?? 0) ^ 1;
      await rejectsWith(kek.unwrap({ ...wrapped, blob: bad.toString('base64') }, aad), KeyIntegrityError, /failed authentication/);
    }
    await rejectsWith(kek.unwrap({ ...wrapped, blob: blob.subarray(0, 40).toString('base64') }, aad), KeyIntegrityError, /malformed blob/);
  });

  it('rotation: a new version with a different KEK; rewrap moves old blobs without changing the data key', async () => {
    const v1 = root.kek('s1');
    const v2 = v1.rotate();
    assert.equal(v2.version, 2);
    const dataKey = newDataKey();
    const old = await v1.wrap(dataKey, aad);
    const moved = await rewrap(old, aad, v1, v2);
    assert.equal(moved.kekVersion, 2);
    assert.notEqual(moved.blob, old.blob);
    assert.deepEqual(await v2.unwrap(moved, aad), dataKey);
    // the v2 provider still reads v1 blobs (derivable), v1 cannot read v2 blobs
    assert.deepEqual(await v2.unwrap(old, aad), dataKey);
    await rejectsWith(v1.unwrap(moved, aad), KeyUnavailableError, /wrapped with KEK version 2, newer than this provider's version 1/);
    // and a v1 blob relabelled as v2 does not verify: versions are different keys
    await rejectsWith(v2.unwrap({ ...old, kekVersion: 2 }, aad), KeyIntegrityError, /failed authentication/);
  });
});

describe('data keys', () => {
  it('withKey hands the clear key to fn and zeroes it afterwards, also when fn throws', async () => {
    const kek = root.kek('s1');
    const dataKey = newDataKey();
    const wrapped = await kek.wrap(dataKey, aad);
    let seen: Buffer | undefined;
    const result = await withKey(wrapped, kek, aad, (key) => {
      seen = key;
      return key.equals(dataKey);
    });
    assert.equal(result, true);
    assert.deepEqual(seen, Buffer.alloc(32), 'zeroed after use');
    let seenOnError: Buffer | undefined;
    await assert.rejects(
      withKey(wrapped, kek, aad, (key) => {
        seenOnError = key;
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(seenOnError, Buffer.alloc(32));
  });

  it('newDataKey gives 32 or 64 random bytes and nothing else', () => {
    assert.equal(newDataKey().length, 32);
    assert.equal(newDataKey(64).length, 64);
    assert.notDeepEqual(newDataKey(), newDataKey());
    assert.throws(() => newDataKey(16 as 32), RangeError);
  });
});
