// The encrypted volume of one managed server: its data directory, WAL and temporary files live
// in `${mountPoint}/data`, encrypted with the server's own key. Two backends behind one
// interface (fscrypt: kernel ext4 encryption on a loop-mounted image; gocryptfs: FUSE), chosen
// automatically with an operator override. Storage encryption cannot be turned off: when no
// backend works, chooseBackend() fails with NoEncryptionBackendError saying how to install one.
//
// Keys: the caller passes the raw key and wipes it afterwards. Backends never keep it, never put
// it in argv, the environment or a file, and wipe their own temporary copies.
import { NoEncryptionBackendError } from './errors.js';
import { FscryptBackend } from './fscrypt.js';
import { GocryptfsBackend } from './gocryptfs.js';
import type { BackendName, VolumeBackend } from './backend.js';

export { volumeDataDir, type BackendName, type ProbeResult, type VolumeBackend, type VolumeSpec } from './backend.js';

let backends: Record<BackendName, VolumeBackend> | null = null;

export function volumeBackend(name: BackendName): VolumeBackend {
  backends ??= { fscrypt: new FscryptBackend(), gocryptfs: new GocryptfsBackend() };
  return backends[name];
}

/** 'auto' (default): fscrypt when it works here, else gocryptfs. A named backend is used only
 * if it works. Throws NoEncryptionBackendError (reasons + how to install) otherwise. */
export async function chooseBackend(override: BackendName | 'auto' = 'auto'): Promise<VolumeBackend> {
  const order: BackendName[] = override === 'auto' ? ['fscrypt', 'gocryptfs'] : [override];
  const reasons: { backend: string; reason: string; howToFix: string }[] = [];
  for (const name of order) {
    const b = volumeBackend(name);
    const r = await b.probe();
    if (r.ok) return b;
    reasons.push({ backend: name, reason: r.reason, howToFix: r.howToFix });
  }
  throw new NoEncryptionBackendError(reasons);
}
