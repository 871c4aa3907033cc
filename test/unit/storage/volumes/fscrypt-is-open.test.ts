// FscryptBackend.isOpen while the volume is being locked: unmounted between its mount check and
// its ioctls, it answers "not open" (GET /servers/{name}/keys answered 500 in that window);
// while the volume is still mounted, an ioctl that fails is an error as before.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { FscryptBackend } from '../../../../src/storage/volumes/fscrypt.js';

const root = mkdtempSync(path.join(tmpdir(), 'pgw-fscrypt-open-'));
after(() => rmSync(root, { recursive: true, force: true }));

function backend(mountChecks: boolean[]): FscryptBackend {
  const b = new FscryptBackend();
  // The mount table as the two checks see it (the first before the ioctls, the second after one failed).
  (b as unknown as { mounted: () => boolean }).mounted = () => mountChecks.shift() ?? false;
  return b;
}

describe('fscrypt isOpen while the volume is locked', () => {
  const stateDir = path.join(root, 'state');
  const mountPoint = path.join(root, 'mnt');
  mkdirSync(stateDir, { recursive: true });
  mkdirSync(mountPoint, { recursive: true });
  const spec = { id: 'server-1', stateDir, mountPoint, sizeBytes: 1 << 20, owner: { uid: 0, gid: 0 } };
  writeFileSync(path.join(stateDir, 'server-1.ext4'), '');

  it('unmounted meanwhile (its data directory gone): not open', async () => {
    assert.equal(await backend([true, false]).isOpen(spec), false);
  });

  it('still mounted: the failing ioctl is an error', async () => {
    await assert.rejects(backend([true, true]).isOpen(spec));
  });
});
