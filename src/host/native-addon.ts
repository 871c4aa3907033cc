// Where the native addon is (`native/relay/`, Rust through napi-rs, built at install by
// scripts/build-native.sh) and loading it: for the gateway's relay (src/gateway/native/addon.ts)
// and the audit store's writer thread (src/audit/store/native-writer.ts), each with its own view
// of what it exports. `PGWARDEN_RELAY_ADDON` names another file.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON_FILE = 'pgwarden-relay.node';

/** The addon, or why there is none (not built, or it does not load here). */
export function loadNativeAddon<T>(): { addon: T } | { addon: null; reason: string } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/host → the package root.
  const file = process.env.PGWARDEN_RELAY_ADDON ?? path.resolve(here, '../../../native/relay', ADDON_FILE);
  if (!existsSync(file)) return { addon: null, reason: `${file} is not built (scripts/build-native.sh)` };
  try {
    return { addon: createRequire(import.meta.url)(file) as T };
  } catch (err) {
    return { addon: null, reason: `${file} did not load: ${(err as Error).message}` };
  }
}
