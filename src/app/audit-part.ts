// The audit log of a platform process. `up` opens the platform's encrypted audit volume and
// writes the platform's log in it; a gateway-only process writes a log of its own next to it, on
// the volume the platform it joins has open: its own chained stream (`<auditDir>-gateway-<port>`)
// signed with its own key (`secrets/audit-signing-gateway-<port>.pem`). Each stream is named for
// search and verify: 'platform', 'gw-<port>'.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import { loadSigningKey, publicKeyPem } from '../audit/store/index.js';
import type { AuditStream } from '../audit/verify-streams.js';
import type { PlatformPaths } from '../host/paths.js';
import type { EventBus } from '../events/bus.js';
import type { AuditFailureAlerts } from '../services/platform-alerts.js';
import { GiB, platformVolume, type Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export interface AuditPart extends Part {
  readonly log: AuditLog;
  /** The streams this process's API searches and verifies, its own first. */
  streams(): Promise<readonly AuditStream[]>;
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

function openLog(options: PlatformOptions, files: { dir: string; witnessFile: string; keyFile: string }, d: AuditDeps): Promise<AuditLog> {
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

/** `up`: the audit volume (made on first start) and the platform's audit log in it. */
export async function openPlatformAudit(options: PlatformOptions, host: Host, d: AuditDeps): Promise<AuditPart> {
  const p = host.paths;
  const volume = platformVolume(host, 'audit', p.auditVolume, { uid: 0, gid: 0 }, 16 * GiB);
  await volume.open(true);
  let log: AuditLog;
  try {
    log = await openLog(options, { dir: p.auditDir, witnessFile: p.auditWitness, keyFile: p.auditKey }, d);
  } catch (err) {
    await volume.close().catch(() => undefined);
    throw err;
  }
  return {
    log,
    streams: async () => [{ name: 'platform', dir: log.dir, publicKeyPem: () => log.publicKeyPem }, ...gatewayStreams(p)],
    async stop() {
      try {
        await log.close();
      } finally {
        await volume.close(); // after the log: its last records are on the volume
      }
    },
  };
}

/** A gateway-only process: its own log (by its port) on the running platform's audit volume. */
export async function openGatewayAudit(options: PlatformOptions, host: Host, d: AuditDeps): Promise<AuditPart> {
  const p = host.paths;
  const volume = platformVolume(host, 'audit', p.auditVolume, { uid: 0, gid: 0 }, 16 * GiB);
  if (!(await volume.isOpen()))
    throw new Error(`The platform in ${p.root} is not running (its encrypted audit volume is locked): start it with 'pgwarden up' first.`);
  const port = options.gatewayPort;
  const f = gatewayFiles(p, port);
  const log = await openLog(options, { dir: f.dir, witnessFile: f.witnessFile, keyFile: gatewayKeyFile(p, port) }, d);
  return { log, streams: async () => [{ name: f.name, dir: f.dir, publicKeyPem: () => log.publicKeyPem }], stop: () => log.close() };
}
