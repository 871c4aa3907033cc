// The audit log of a platform process. `up` opens the platform's encrypted audit volume and
// writes the platform's log on it, outside its encrypted directory, the segments sealed by the
// writer with a key of the platform's (audit-store-key.ts); a store begun in the encrypted
// directory before is continued there. A gateway-only process on the platform's host writes a log
// of its own in that directory, on the volume the platform has open: its own chained stream
// (`<auditDir>-gateway-<port>`) signed with its own key (`secrets/audit-signing-gateway-<port>.pem`).
// A gateway-only process on another host (its data dir is no platform's) opens an encrypted audit
// volume of its own in its own data dir and writes its stream there, with a key of its own
// (`secrets/audit-signing-gw-<hostId>-<port>.pem`). Streams are named for search and verify:
// 'platform', 'gw-<port>', 'gw-<hostId>-<port>'; the platform reads the last kind through each
// gateway's API (remote-audit.ts), as registered in the catalog.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { loadSigningKey, publicKeyPem } from '../audit/store/index.js';
import type { RemoteStream } from '../audit/search.js';
import type { AuditStream, StreamCaller, VerifiableStream } from '../audit/verify-streams.js';
import type { GatewayEntry } from '../catalog/gateways-repo.js';
import type { PlatformPaths } from '../host/paths.js';
import type { EventBus } from '../events/bus.js';
import type { AuditFailureAlerts } from '../services/platform-alerts.js';
import { GiB, platformVolume, type Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';
import { remoteStreams } from './remote-audit.js';
import { platformStoreKey } from './audit-store-key.js';
import { wipe } from '../crypto/index.js';

export interface AuditPart extends Part {
  readonly log: AuditLog;
  /** This process's own stream, by the name search and verify give it. */
  readonly name: string;
  /** The streams this process's API searches and verifies, its own first; remote ones are read
   * with the caller's token. */
  streams(caller?: StreamCaller): Promise<readonly VerifiableStream[]>;
}

/** What the platform reads of the catalog's gateway registry. */
export interface GatewayRegistry {
  elsewhere(hostId: string): Promise<GatewayEntry[]>;
}

export interface PlatformAuditPart extends AuditPart {
  /** Once the catalog is connected: the streams of gateways registered from other hosts join
   * search and verify, read through their APIs (HTTPS chaining to `caPem`). */
  readRemoteGateways(registry: GatewayRegistry, caPem: string): void;
}

const GATEWAY_STREAM = /-gateway-([0-9]{1,5})$/;

/** A gateway process's stream dir and key file, by its gateway port. */
function gatewayFiles(p: PlatformPaths, port: number) {
  return {
    name: `gw-${port}`,
    dir: `${p.auditDir}-gateway-${port}`,
    witnessFile: `${p.auditWitness}.gateway-${port}`,
    ownKey: path.join(p.secretsDir, `audit-signing-gateway-${port}.pem`),
  };
}

/** Its own key, or the platform's for a stream an older version started with that key. */
function gatewayKeyFile(p: PlatformPaths, port: number): string {
  const f = gatewayFiles(p, port);
  const legacy = !existsSync(f.ownKey) && existsSync(f.dir) && readdirSync(f.dir).length > 0;
  return legacy ? p.auditKey : f.ownKey;
}

async function keyPem(file: string): Promise<string> {
  return publicKeyPem((await loadSigningKey(file, { create: false })).publicKey);
}

/** Every gateway process's stream next to the platform's on this host. */
function gatewayStreams(p: PlatformPaths): AuditStream[] {
  const parent = path.dirname(p.auditDir);
  const base = path.basename(p.auditDir);
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(`${base}-gateway-`) && GATEWAY_STREAM.test(n))
    .map((n) => Number(GATEWAY_STREAM.exec(n)![1]))
    .sort((a, b) => a - b)
    .map((port) => {
      const f = gatewayFiles(p, port);
      return { name: f.name, dir: f.dir, publicKeyPem: () => keyPem(gatewayKeyFile(p, port)) };
    });
}

interface AuditDeps {
  readonly log: Logger;
  readonly bus: EventBus;
  readonly alerts: AuditFailureAlerts;
}

function openLog(
  options: PlatformOptions,
  files: { dir: string; witnessFile: string; keyFile: string; sealKey?: Uint8Array },
  d: AuditDeps,
): Promise<AuditLog> {
  return AuditLog.open(
    {
      ...files,
      durability: options.auditDurability ?? 'batched',
      policy: options.auditFailurePolicy ?? 'failClosed',
      log: d.log,
      onFailure: (err) => d.alerts.failed(err),
      onRecovered: () => d.alerts.recovered(),
    },
    d.bus,
  );
}

/** The platform's own log: sealed segments in their own dir (made so since they exist), or, for a
 * platform that began its store on the audit volume before, that store, continued there. */
async function openPlatformLog(options: PlatformOptions, host: Host, d: AuditDeps): Promise<AuditLog> {
  const p = host.paths;
  const files = { witnessFile: p.auditWitness, keyFile: p.auditKey };
  if (holdsStore(p.auditDir)) return openLog(options, { dir: p.auditDir, ...files }, d);
  const sealKey = await platformStoreKey(host.kekRoot, p.auditStoreKey, true);
  try {
    return await openLog(options, { dir: p.sealedAuditDir, ...files, sealKey }, d);
  } finally {
    wipe(sealKey); // the store holds its own copies
  }
}

function holdsStore(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => n.startsWith('segment-') || n.startsWith('checkpoints-'));
  } catch {
    return false;
  }
}

/** `up`: the audit volume (made on first start) and the platform's audit log. */
export async function openPlatformAudit(options: PlatformOptions, host: Host, d: AuditDeps): Promise<PlatformAuditPart> {
  const p = host.paths;
  const volume = platformVolume(host, 'audit', p.auditVolume, { uid: 0, gid: 0 }, 16 * GiB);
  await volume.open(true);
  let log: AuditLog;
  try {
    log = await openPlatformLog(options, host, d);
  } catch (err) {
    await volume.close().catch(() => undefined);
    throw err;
  }
  let remote: ((caller: StreamCaller) => Promise<RemoteStream[]>) | null = null;
  const local = (): AuditStream[] => [{ name: 'platform', dir: log.dir, publicKeyPem: () => log.publicKeyPem }, ...gatewayStreams(p)];
  return {
    log,
    name: 'platform',
    streams: async (caller = {}) => [...local(), ...(remote ? await remote(caller) : [])],
    readRemoteGateways(registry, caPem) {
      // Copies are verified on the encrypted audit volume, never in clear elsewhere on disk.
      const scratchDir = path.join(path.dirname(p.auditDir), 'remote-verify');
      remote = async (caller) => {
        let entries: GatewayEntry[];
        try {
          entries = await registry.elsewhere(host.hostId);
        } catch (err) {
          // Without the registry the platform cannot know which streams exist: say so as a
          // stream that cannot be read, so verify is not ok and search names what is missing.
          return [registryUnreadable((err as Error).message)];
        }
        return remoteStreams(entries, caller, { caPem, scratchDir });
      };
    },
    async stop() {
      try {
        await log.close();
      } finally {
        await volume.close(); // after the log: its last records are on the volume
      }
    },
  };
}

function registryUnreadable(reason: string): RemoteStream {
  const fail = (): never => {
    throw new Error(`the catalog's gateway registry could not be read: ${reason}`);
  };
  return {
    name: 'gateway-registry',
    remote: {
      url: 'catalog',
      publicKeyPem: '',
      // biome-ignore lint/correctness/useYield: it never has records, it only says why
      async *records() {
        fail();
      },
      withStoreCopy: async () => fail(),
    },
  };
}

/** A gateway-only process: on the platform's host, its own log (by its port) on the running
 * platform's audit volume; on another host, its own log on an audit volume of its own. */
export async function openGatewayAudit(options: PlatformOptions, host: Host, d: AuditDeps): Promise<AuditPart> {
  const p = host.paths;
  const volume = platformVolume(host, 'audit', p.auditVolume, { uid: 0, gid: 0 }, 16 * GiB);
  if (!(await volume.isOpen())) {
    // A platform's data dir whose platform is stopped: refuse, as ever, rather than start a
    // second audit volume beside the platform's (its stream would be on no list the platform reads).
    if (isPlatformDataDir(p))
      throw new Error(`The platform in ${p.root} is not running (its encrypted audit volume is locked): start it with 'pgwarden up' first.`);
    return openRemoteGatewayAudit(options, host, d);
  }
  const port = options.gatewayPort;
  const f = gatewayFiles(p, port);
  const log = await openLog(options, { dir: f.dir, witnessFile: f.witnessFile, keyFile: gatewayKeyFile(p, port) }, d);
  return { log, name: f.name, streams: async () => [{ name: f.name, dir: f.dir, publicKeyPem: () => log.publicKeyPem }], stop: () => log.close() };
}

/** `up` ran here: it leaves its client config, and its audit volume's image or ciphertext dir
 * (`volumes/platform-audit.*`) whichever backend made it. */
export function isPlatformDataDir(p: PlatformPaths): boolean {
  if (existsSync(p.clientConfig)) return true;
  try {
    return readdirSync(p.volumesDir).some((n) => n.startsWith('platform-audit.'));
  } catch {
    return false;
  }
}

/** A gateway on another host: its own encrypted volume (made on first start, keyed from the
 * root key like the platform's), its own stream and signing key, named with its host id so it
 * cannot clash with a stream of the platform's host or of another host. */
async function openRemoteGatewayAudit(options: PlatformOptions, host: Host, d: AuditDeps): Promise<AuditPart> {
  const p = host.paths;
  const port = options.gatewayPort;
  const name = `gw-${host.hostId}-${port}`;
  const volume = platformVolume(host, `audit-${name}`, `${p.auditVolume}-${name}`, { uid: 0, gid: 0 }, 16 * GiB);
  await volume.open(true);
  const dir = path.join(volume.dataDir, 'store');
  let log: AuditLog;
  try {
    log = await openLog(
      options,
      { dir, witnessFile: path.join(path.dirname(p.auditWitness), `checkpoint-${name}.json`), keyFile: path.join(p.secretsDir, `audit-signing-${name}.pem`) },
      d,
    );
  } catch (err) {
    await volume.close().catch(() => undefined);
    throw err;
  }
  return {
    log,
    name,
    streams: async () => [{ name, dir, publicKeyPem: () => log.publicKeyPem }],
    async stop() {
      try {
        await log.close();
      } finally {
        await volume.close();
      }
    },
  };
}
