// The last step of every backend's probe: a real tiny volume, created, found open and destroyed
// in a temp dir, so that "available" means a volume really worked here.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { VolumeBackend, VolumeSpec } from './backend.js';

/** Null when the test volume worked, else why not. `notOpen`: what to say when it was not open after create. */
export async function tryTestVolume(
  backend: Pick<VolumeBackend, 'create' | 'isOpen' | 'destroy'>,
  o: { readonly name: string; readonly sizeBytes: number; readonly keyBytes: number; readonly notOpen: string },
): Promise<string | null> {
  const dir = await mkdtemp(path.join(tmpdir(), `pgw-${o.name}-probe-`));
  const spec: VolumeSpec = {
    id: 'probe',
    stateDir: path.join(dir, 'state'),
    mountPoint: path.join(dir, 'mnt'),
    sizeBytes: o.sizeBytes,
    owner: { uid: 0, gid: 0 },
  };
  const key = randomBytes(o.keyBytes);
  try {
    await backend.create(spec, key);
    if (!(await backend.isOpen(spec))) return o.notOpen;
    await backend.destroy(spec);
    return null;
  } catch (err) {
    return `a test volume failed: ${(err as Error).message}`;
  } finally {
    key.fill(0);
    await backend.destroy(spec).catch(() => undefined); // already reported
    rmSync(dir, { recursive: true, force: true });
  }
}
