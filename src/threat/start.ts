// Assembles threat protection for a platform process: the detectors' data sources (GeoIP,
// the operator's address lists, the attack-tool list), the SQL-injection detector and the
// notifiers, around one ThreatEngine.
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import type { DeliveryLog, ThreatStore } from './store.js';
import type { SecurityAlertPolicy } from './policy.js';
import { ThreatEngine, type LearnedStore, type Notifier, type SqlInspector } from './engine.js';
import { SqlInjectionDetector } from './sql/detector.js';
import type { LearnedShapes } from './sql/learned.js';
import type { AnomalySources } from './detectors/login-anomaly.js';
import { GeoIp } from './sources/geoip.js';
import { IpLists } from './sources/ip-lists.js';
import { loadHarmfulApps } from './sources/harmful-apps.js';
import { EmailNotifier, NotificationDispatcher, WebhookNotifier, type SmtpSettings as NotifySmtpSettings } from './notify/index.js';

/** The platform's SMTP settings (`up --smtp-*`); `timeoutMs` defaults to 10 s. */
export type SmtpSettings = Omit<NotifySmtpSettings, 'timeoutMs'> & { readonly timeoutMs?: number };

/** Sends alerts by e-mail (when SMTP is configured) and to webhooks; records every outcome. */
export function startNotifier(
  smtp: SmtpSettings | undefined,
  repo: DeliveryLog,
  log: Logger,
  openSecret?: (stored: string, server: string, url: string) => string,
): Notifier {
  const dispatcher = new NotificationDispatcher({
    ...(openSecret ? { openSecret } : {}),
    email: smtp ? new EmailNotifier({ ...smtp, timeoutMs: smtp.timeoutMs ?? 10_000 }) : null,
    webhook: new WebhookNotifier(),
    onResult: (r) => {
      repo.recordDelivery(r).catch((err: Error) => log.warn({ err }, 'could not record an alert delivery'));
      if (r.outcome === 'failed') log.warn({ alertId: r.alertId, channel: r.channel, target: r.target, error: r.error }, 'alert delivery failed');
    },
  });
  return {
    deliver: (alert, targets) => dispatcher.deliver(alert, targets),
    close: async () => {
      await dispatcher.close();
    },
  };
}

/** The detectors' data: GeoIP/ASN (unless turned off), the operator's lists, attack tools. */
export async function threatSources(
  o: { geoIp?: boolean; ipLists?: readonly string[] },
  onListProblem: (file: string, message: string) => void = () => undefined,
): Promise<AnomalySources> {
  return {
    locations: o.geoIp === false ? null : await GeoIp.open(),
    ipLists: o.ipLists?.length ? new IpLists(o.ipLists, onListProblem) : null,
    harmfulApp: loadHarmfulApps(),
  };
}

/** One SQL-injection detector per server, over the server's learned application shapes. */
export function sqlInspectorFactory(): (learned?: LearnedShapes) => SqlInspector {
  return (learned) => new SqlInjectionDetector(learned ? { learned } : {});
}

export async function startThreatEngine(o: {
  bus: EventBus;
  repo: ThreatStore & DeliveryLog & LearnedStore;
  log: Logger;
  policies: () => ReadonlyMap<string, SecurityAlertPolicy>;
  serverId: (name: string) => number | undefined;
  options: { smtp?: SmtpSettings; ipLists?: readonly string[]; geoIp?: boolean };
  consoleUrl: () => string;
  /** Opens a webhook secret as stored (sealed) right before a delivery is signed. */
  openWebhookSecret?: (stored: string, server: string, url: string) => string;
}): Promise<ThreatEngine> {
  const engine = new ThreatEngine({
    bus: o.bus,
    repo: o.repo,
    log: o.log,
    policies: o.policies,
    serverId: o.serverId,
    sources: await threatSources(o.options, (file, message) => o.log.warn({ file }, `threat IP list: ${message}`)),
    sqlInspector: sqlInspectorFactory(),
    learnedStore: o.repo,
    notifier: startNotifier(o.options.smtp, o.repo, o.log, o.openWebhookSecret),
    consoleUrl: o.consoleUrl,
  });
  await engine.start();
  return engine;
}
