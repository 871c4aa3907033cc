// The platform's audit store key: 32 random bytes that seal its segments (AES-256-GCM in the
// writer, src/audit/store/seal.ts), kept wrapped by the root key's KEK in a 0600 file, made on
// first start like the platform volumes' keys. Sealing in the writer instead of putting the store
// on an encrypted volume takes the volume's encryption off every record's path: where the kernel
// has no AES instructions in its crypto API (this project's CI machines), an fscrypt volume cost
// about 10 µs of CPU per audited statement, AES-GCM with AES-NI in user space well under 1.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { newDataKey, parseWrappedKey, serverKeyAad, type SystemKeyRoot } from '../crypto/index.js';

const KEK_ID = 'platform-audit-store';
const AAD = serverKeyAad(KEK_ID, 'audit');

/** The store key in clear (the caller wipes it); made and saved when `create` and missing. */
export async function platformStoreKey(kekRoot: SystemKeyRoot, file: string, create: boolean): Promise<Buffer> {
  const kek = kekRoot.kek(KEK_ID);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw err;
  }
  if (text !== undefined) return kek.unwrap(parseWrappedKey((JSON.parse(text) as { wrappedKey: unknown }).wrappedKey), AAD);
  const key = newDataKey(32);
  const wrappedKey = await kek.wrap(key, AAD);
  writeFileSync(`${file}.tmp`, `${JSON.stringify({ wrappedKey }, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  return key;
}
