// The pure parts of the encrypted volumes: fscrypt ioctl numbers and struct layouts against
// linux/fscrypt.h, the mountinfo parser, the gocryptfs password check on a real gocryptfs.conf,
// spec checks and the "no backend" error text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as abi from '../../../../src/storage/volumes/fscrypt-ioctl.js';
import { parseMountInfo } from '../../../../src/storage/volumes/mounts.js';
import { hexPassword, parseGocryptfsConf, passwordUnlocks } from '../../../../src/storage/volumes/gocryptfs-config.js';
import { checkSpec } from '../../../../src/storage/volumes/spec-checks.js';
import { NoEncryptionBackendError } from '../../../../src/storage/volumes/errors.js';

describe('fscrypt ABI', () => {
  it('computes the ioctl numbers of linux/fscrypt.h', () => {
    assert.equal(abi.FS_IOC_SET_ENCRYPTION_POLICY, 0x800c6613);
    assert.equal(abi.FS_IOC_GET_ENCRYPTION_POLICY_EX, 0xc0096616);
    assert.equal(abi.FS_IOC_ADD_ENCRYPTION_KEY, 0xc0506617);
    assert.equal(abi.FS_IOC_REMOVE_ENCRYPTION_KEY, 0xc0406618);
    assert.equal(abi.FS_IOC_GET_ENCRYPTION_KEY_STATUS, 0xc080661a);
  });

  it('lays out a v2 policy: AES-256-XTS, AES-256-CTS, padding 32, identifier at offset 8', () => {
    const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const p = abi.encodePolicyV2(id);
    assert.equal(p.length, 24);
    assert.deepEqual([...p.subarray(0, 8)], [2, 1, 4, 3, 0, 0, 0, 0]);
    assert.deepEqual(p.subarray(8), id);
    const ex = abi.getPolicyExArg();
    assert.equal(ex.readBigUInt64LE(0), 24n);
    p.copy(ex, 8);
    const back = abi.decodePolicyEx(ex);
    assert.ok(back && abi.isPgwardenPolicy(back));
    assert.deepEqual(back.identifier, id);
    ex[8 + 1] = 9; // another contents mode
    assert.equal(abi.isPgwardenPolicy(abi.decodePolicyEx(ex)!), false);
    ex[8] = 1; // a v1 policy
    assert.equal(abi.decodePolicyEx(ex), null);
  });

  it('puts the raw key after the 80-byte add-key header, with its size and the identifier key spec', () => {
    const key = Buffer.alloc(64, 0xab);
    const a = abi.addKeyArg(key);
    assert.equal(a.length, 144);
    assert.equal(a.readUInt32LE(0), abi.FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER);
    assert.equal(a.readUInt32LE(40), 64);
    assert.equal(a.readUInt32LE(44), 0);
    assert.ok(
      a.subarray(48, 80).every((b) => b === 0),
      'reserved words are zero',
    );
    assert.deepEqual(a.subarray(80), key);
    a.fill(0x11, 8, 24); // what the kernel writes back
    assert.deepEqual(abi.addedKeyIdentifier(a), Buffer.alloc(16, 0x11));
  });

  it('reads removal flags at offset 40 and key status at offset 64', () => {
    const id = Buffer.alloc(16, 7);
    const r = abi.removeKeyArg(id);
    assert.equal(r.length, 64);
    assert.deepEqual(r.subarray(8, 24), id);
    r.writeUInt32LE(abi.FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY, 40);
    assert.equal(abi.removalStatusFlags(r), 1);
    const s = abi.keyStatusArg(id);
    assert.equal(s.length, 128);
    s.writeUInt32LE(abi.FSCRYPT_KEY_STATUS_PRESENT, 64);
    s.writeUInt32LE(1, 68);
    s.writeUInt32LE(3, 72);
    assert.deepEqual(abi.decodeKeyStatus(s), { status: 2, statusFlags: 1, userCount: 3 });
  });
});

describe('mountinfo', () => {
  it('parses mount point, type and source, with octal escapes and optional fields', () => {
    const text =
      '36 35 98:0 / /mnt/a\\040b rw,noatime shared:1 master:2 - ext4 /dev/loop3 rw\n' +
      '40 35 0:50 / /srv/v/mnt rw,nosuid,nodev,relatime - fuse.gocryptfs /srv/v/state/x.cipher rw,user_id=0\n';
    const m = parseMountInfo(text);
    assert.deepEqual(
      m.map((e) => [e.mountPoint, e.fsType, e.source]),
      [
        ['/mnt/a b', 'ext4', '/dev/loop3'],
        ['/srv/v/mnt', 'fuse.gocryptfs', '/srv/v/state/x.cipher'],
      ],
    );
  });
});

describe('gocryptfs password', () => {
  // Made by `gocryptfs -init -scryptn 10` with the password abcd1234 (a test fixture, not a secret).
  const conf = parseGocryptfsConf(
    JSON.stringify({
      Creator: 'gocryptfs 2.3',
      EncryptedKey: 'Uw/fjVZkb6rJJ3mNplEREJ1O6vspqKXCAIeN7oKYQhtv8DP39diAw3sAWdeeFQ7eghBlFY6iBJRCznbo+zS5vw==',
      ScryptObject: { Salt: '51nP18D6TQU2EapLnOD6b+pZ3Lucr+HMqk6SY+D38Ws=', N: 1024, R: 8, P: 1, KeyLen: 32 },
      Version: 2,
      FeatureFlags: ['HKDF', 'GCMIV128', 'DirIV', 'EMENames', 'LongNames', 'Raw64'],
    }),
  );

  it('unlocks with the right password and not with another', () => {
    assert.equal(passwordUnlocks(conf, Buffer.from('abcd1234')), true);
    assert.equal(passwordUnlocks(conf, Buffer.from('abcd1235')), false);
  });

  it('leaves formats it does not know to gocryptfs', () => {
    assert.equal(passwordUnlocks({ ...conf, FeatureFlags: [...conf.FeatureFlags, 'AESSIV'] }, Buffer.from('abcd1234')), null);
  });

  it('hex-encodes the key as the password', () => {
    assert.equal(hexPassword(Buffer.from([0, 1, 0xab, 0xff])).toString(), '0001abff');
  });
});

describe('volume spec and errors', () => {
  const base = { id: 'server-12', stateDir: '/var/lib/pgw/vol', mountPoint: '/var/lib/pgw/mnt/server-12', sizeBytes: 1 << 30, owner: { uid: 999, gid: 999 } };
  it('accepts a plain spec and refuses unusable ids and nested paths', () => {
    checkSpec(base);
    assert.throws(() => checkSpec({ ...base, id: '../x' }), /Invalid volume id/);
    assert.throws(() => checkSpec({ ...base, stateDir: 'rel' }), /absolute/);
    assert.throws(() => checkSpec({ ...base, stateDir: '/var/lib/pgw/mnt/server-12/state' }), /contain each other/);
  });

  it('says that encryption cannot be turned off and how to install a backend', () => {
    const e = new NoEncryptionBackendError([
      { backend: 'fscrypt', reason: 'no ext4 encryption.', howToFix: 'Use a newer kernel.' },
      { backend: 'gocryptfs', reason: 'gocryptfs is not installed.', howToFix: 'apt-get install gocryptfs fuse3.' },
    ]);
    assert.match(e.message, /cannot be turned off/);
    assert.match(e.message, /gocryptfs: gocryptfs is not installed\. To fix: apt-get install gocryptfs fuse3/);
  });
});
