// The audit log of a platform process. `up` opens the platform's encrypted audit volume and
// writes the platform's log in it; a gateway-only process writes a log of its own next to it, on
// the volume the platform it joins has open.
import type { Logger } from 'pino';
import { AuditLog } from '../audit/audit-log.js';
import type { EventBus } from '../events/bus.js';
import type { AuditFailureAlerts } from '../services/platform-alerts.js';
import { GiB, platformVolume, type Host } from './host.js';
import type { PlatformOptions } from './options.js';
import type { Part } from './parts.js';

export interface AuditPart extends Part {
  readonly log: AuditLog;
}

interface AuditDeps {
  readonly log: Logger;
  readonly bus: EventBus;
  readonly alerts: AuditFailureAlerts;
}

function openLog(options: PlatformOptions, host: Host, files: { dir: string; witnessFile: string }, d: AuditDeps): Promise<AuditLog> {
  return AuditLog.open(
    {
      ...files,
      keyFile: host.paths.auditKey,
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
    log = await openLog(options, host, { dir: p.auditDir, witnessFile: p.auditWitness }, d);
  } catch (err) {
    await volume.close().catch(() => undefined);
    throw err;
  }
  return {
    log,
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
  const suffix = `gateway-${options.gatewayPort}`;
  const log = await openLog(options, host, { dir: `${p.auditDir}-${suffix}`, witnessFile: `${p.auditWitness}.${suffix}` }, d);
  return { log, stop: () => log.close() };
}
