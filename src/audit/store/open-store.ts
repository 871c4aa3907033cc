// Opening the audit store: its directory, signing key and lock, then the store (store.ts) and its
// writer. The store's own copy of a sealing key is wiped when it closes or fails to open.
import { mkdir } from 'node:fs/promises';
import { lockDirectory, type DirectoryLock } from './lock.js';
import { resolveOptions, type AuditStoreOptions } from './options.js';
import { holdStoreKey } from './seal-keys.js';
import { loadSigningKey } from './signing-key.js';
import { AuditStore } from './store.js';

export async function openAuditStore(given: AuditStoreOptions): Promise<AuditStore> {
  // The store's own copy of its key: the caller may wipe its own once this returns.
  const options = given.sealKey ? { ...given, sealKey: Buffer.from(given.sealKey) } : given;
  const resolved = resolveOptions(options);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const key = await loadSigningKey(options.keyFile);
  const lock = await lockDirectory(options.dir);
  // Sealed segments are read in this thread too (search, verify): it holds the key while open.
  const releaseKey = options.sealKey ? holdStoreKey(options.dir, options.sealKey) : () => undefined;
  try {
    const held: DirectoryLock = {
      async release() {
        await lock.release();
        releaseKey();
        options.sealKey?.fill(0);
      },
    };
    const store = new AuditStore(options, resolved, key, held);
    await store.start();
    return store;
  } catch (err) {
    await lock.release();
    releaseKey();
    options.sealKey?.fill(0);
    throw err;
  }
}
