// KEK rotation for the backup repository: every wrapped data key of a server (one per base
// backup in its manifest, one per WAL epoch in wal/keys/) is unwrapped with the KEK that wrapped
// it and wrapped again with the new one. Only those small JSON objects are rewritten (each put is
// atomic); no backup or WAL ciphertext is touched.
import type { KekProvider } from '../../crypto/index.js';
import { wipe } from '../../crypto/index.js';
import { defaultKeyAad, loadWrappedKey, storeWrappedKey } from './cipher.js';
import type { BackupRepository } from './repository.js';
import { readAll } from './stream-util.js';

const MANIFEST = /^[^/]+\/base\/([^/]+)\/manifest\.json$/;
const WAL_KEY = /^[^/]+\/wal\/keys\/([^/]+)\.json$/;

/** Re-wraps every data key of `serverId` not yet under `to`; returns how many were re-wrapped.
 * `from` unwraps (it may dispatch on each wrapped key's version), `to` wraps. */
export async function rewrapBackupKeys(repo: BackupRepository, serverId: string, from: KekProvider, to: KekProvider): Promise<number> {
  let count = 0;
  for (const obj of await repo.list(serverId)) {
    const base = MANIFEST.exec(obj.key);
    const m = base ?? WAL_KEY.exec(obj.key);
    if (!m) continue;
    const kind = base ? 'base' : 'wal';
    const doc = JSON.parse((await readAll(await repo.get(obj.key), 1 << 20)).toString('utf8')) as { wrappedKey: unknown };
    const wrapped = loadWrappedKey(doc.wrappedKey);
    // Already under the new KEK (a second pass catches keys wrapped while the first one ran).
    if (wrapped.kekVersion === to.version && wrapped.provider === (to.kind === 'system' ? 'system' : 'pkcs11')) continue;
    const aad = defaultKeyAad(serverId, kind, m[1]!);
    const key = await from.unwrap(wrapped, aad);
    try {
      doc.wrappedKey = storeWrappedKey(await to.wrap(key, aad));
    } finally {
      wipe(key);
    }
    await repo.put(obj.key, Buffer.from(`${JSON.stringify(doc, null, 2)}\n`));
    count++;
  }
  return count;
}
