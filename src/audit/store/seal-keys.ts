// The store keys this thread holds, by store directory: what the kernel keyring is to an fscrypt
// directory. A store opened with a key registers it for as long as it is open, so search, export,
// verify and the store-file route read its sealed segments; nothing else needs the key passed on.
import path from 'node:path';
import { AuditKeyError } from './errors.js';

const held = new Map<string, { key: Buffer; holders: number }>();

/** Holds `key` for the store in `dir` until the returned release is called. */
export function holdStoreKey(dir: string, key: Uint8Array): () => void {
  const at = path.resolve(dir);
  const entry = held.get(at);
  if (entry && !entry.key.equals(key)) throw new AuditKeyError(`another key is held for the audit store in ${dir}`);
  const e = entry ?? { key: Buffer.from(key), holders: 0 };
  e.holders++;
  held.set(at, e);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--e.holders === 0) {
      e.key.fill(0);
      held.delete(at);
    }
  };
}

/** The key of the store a sealed file is in; AuditKeyError when this thread holds none. */
export function storeKeyOf(file: string): Buffer {
  const dir = path.resolve(path.dirname(file));
  const e = held.get(dir);
  if (!e) throw new AuditKeyError(`${path.basename(file)} is sealed and no key is held for the audit store in ${dir}`);
  return e.key;
}
