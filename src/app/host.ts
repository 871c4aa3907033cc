// This host's side of a platform process: its data dir (and the lock only `up` takes), the
// installation's host id, the OS users PostgreSQL runs as, the root key and what is derived from
// it, and the platform's own encrypted volumes. Nothing here runs: it holds nothing to stop.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PlatformPaths } from '../host/paths.js';
import { acquireLock } from '../host/lock.js';
import { SecretSealer, loadOrCreateKeyFile, loadOrCreateSecret } from '../host/secrets.js';
import { PrincipalKeys } from '../auth/principal-keys.js';
import { PlatformAccounts, sweepOrphanAccounts } from '../host/os-accounts.js';
import { findPgBinaries } from '../host/pg-binaries.js';
import { SystemKeyRoot, enableFips, serverKeyAad } from '../crypto/index.js';
import { SYSTEM_PKCS11_CONFIG, loadPkcs11Modules, type Pkcs11Modules } from '../crypto/pkcs11-config.js';
import { EncryptedVolume, fileVolumeRecords } from '../storage/encrypted-volume.js';
import { chooseBackend, type VolumeBackend } from '../storage/volumes/index.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export const GiB = 1024 ** 3;

export interface Host {
  readonly paths: PlatformPaths;
  /** Names this installation: its servers, OS users and pgAudit offsets are this host's. */
  readonly hostId: string;
  /** The OS users PostgreSQL runs as: one per managed server, one for the catalog. */
  readonly accounts: PlatformAccounts;
  /** Derives each server's system-managed KEK and the platform volumes' keys (0600, only the platform reads it). */
  readonly kekRoot: SystemKeyRoot;
  /** The PKCS#11 modules customer keys may load, checked before anything starts. */
  readonly pkcs11Modules: Pkcs11Modules;
  /** Seals webhook secrets in the catalog (the key is not there). */
  readonly webhookSecrets: SecretSealer;
  /** Keys the API token hashes in the catalog (the key is not there). */
  readonly tokenHashKey: Buffer;
  /** Derives each token-login principal's SCRAM keys. */
  readonly principalKeys: PrincipalKeys;
  readonly pgMajorVersion: number;
  /** The storage backend of new volumes, chosen once (on first use). */
  readonly volumeBackend: () => Promise<VolumeBackend>;
}

/** FIPS first (a platform that cannot honour --fips creates nothing), then the data dir. */
export function prepareDataDir(options: PlatformOptions, paths: PlatformPaths): void {
  if (options.fips) enableFips();
  mkdirSync(paths.root, { recursive: true, mode: 0o711 });
  chmodSync(paths.root, 0o711); // the service account must traverse it to reach its own dirs
}

/** One platform per data dir: `up` holds the lock until it stops. */
export function lockDataDir(paths: PlatformPaths): Part {
  let release: (() => void) | null = acquireLock(paths.lockFile, paths.root);
  return {
    stop() {
      release?.();
      release = null;
    },
  };
}

export async function openHost(options: PlatformOptions, paths: PlatformPaths): Promise<Host> {
  const pgMajorVersion = findPgBinaries().majorVersion;
  const pkcs11Modules = loadPkcs11Modules({ flags: options.pkcs11Modules, files: [SYSTEM_PKCS11_CONFIG, path.join(paths.root, 'pkcs11-modules.json')] });
  mkdirSync(paths.runDir, { recursive: true, mode: 0o711 });
  mkdirSync(paths.serversDir, { recursive: true, mode: 0o711 });
  mkdirSync(paths.secretsDir, { recursive: true, mode: 0o700 });
  const hostId = loadHostId(paths.root);
  // One OS user per managed server and one for the catalog (named after this installation).
  const accounts = new PlatformAccounts({ root: paths.root, hostId });
  accounts.assertReachable(paths.root);
  // Encryption at rest: the root key derives each server's system-managed KEK; the catalog and
  // the audit store live on encrypted volumes of their own.
  const kekRoot = await SystemKeyRoot.load(path.join(paths.secretsDir, 'kek-root.key'));
  const backendChoice = options.volumeBackend ?? 'auto';
  let chosen: Promise<VolumeBackend> | null = null;
  return {
    paths,
    hostId,
    accounts,
    kekRoot,
    pkcs11Modules,
    webhookSecrets: new SecretSealer(kekRoot, 'webhook-secrets'),
    tokenHashKey: loadOrCreateKeyFile(path.join(paths.secretsDir, 'api-token-hmac.key')),
    principalKeys: new PrincipalKeys(Buffer.from(loadOrCreateSecret(path.join(paths.secretsDir, 'principal-root.secret')), 'base64url')),
    pgMajorVersion,
    volumeBackend: () => (chosen ??= chooseBackend(backendChoice)),
  };
}

/** Removes the OS users of platforms whose data dir is gone (never fatal). */
export async function sweepOrphans(log: Logger): Promise<void> {
  const swept = await sweepOrphanAccounts().catch((err: Error) => {
    log.error({ err }, 'removing OS users of removed platforms');
    return [];
  });
  if (swept.length) log.info({ users: swept }, 'removed the OS users of platforms whose data dir is gone');
}

/** One of the platform's own volumes (`audit`, `catalog`); its key file is wrapped by the root key's KEK. */
export function platformVolume(host: Host, name: string, mountPoint: string, owner: { uid: number; gid: number }, sizeBytes: number): EncryptedVolume {
  const { paths, kekRoot } = host;
  return new EncryptedVolume(
    { id: `platform-${name}`, stateDir: paths.volumesDir, mountPoint, sizeBytes, owner },
    {
      records: fileVolumeRecords(path.join(paths.secretsDir, `volume-${name}.json`)),
      kek: async () => kekRoot.kek(`platform-${name}`),
      aad: serverKeyAad(`platform-${name}`, 'volume'),
    },
    host.volumeBackend,
  );
}

function loadHostId(root: string): string {
  const file = path.join(root, 'host-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const id = randomBytes(8).toString('hex');
  writeFileSync(file, `${id}\n`, { mode: 0o644 });
  return id;
}
