// Statement audit at the gateway: per server, the classifier and filter its audit settings ask
// for (rebuilt only when the settings change), and the per-session tap that turns the relayed
// protocol into statement events.
import { AUDIT_CLASSES, Classifier, isAudited, parseClassList, type StatementInfo } from './classify/index.js';
import { StatementAuditConsumer, type StatementEvent } from './tap/index.js';
import type { AuditSettings } from './settings.js';

export interface StatementAuditConfig {
  readonly classifier: Classifier;
  readonly include: (info: StatementInfo) => boolean;
  readonly logParameters: boolean;
  /** Every class is audited: every statement is recorded (none can be relayed unobserved). */
  readonly recordsEverything: boolean;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class StatementAuditPolicies {
  private readonly byServer = new Map<string, { key: string; config: StatementAuditConfig | null }>();

  /** Null when the server audits no statement class. */
  forServer(server: string, settings: AuditSettings | undefined): StatementAuditConfig | null {
    if (!settings) return null;
    const key = JSON.stringify(settings);
    const hit = this.byServer.get(server);
    if (hit?.key === key) return hit.config;
    let config: StatementAuditConfig | null = null;
    const parsed = parseClassList(settings.classes.join(','));
    if ('classes' in parsed && parsed.classes.size > 0) {
      const enabled = parsed.classes;
      // A plain name is a column whose values are redacted; anything else is a pattern.
      const columns = settings.redact.filter((r) => IDENTIFIER.test(r));
      const patterns = settings.redact.filter((r) => !IDENTIFIER.test(r)).map((r) => new RegExp(r, 'i'));
      config = {
        classifier: new Classifier({ redactColumns: columns, redactPatterns: patterns }),
        include: (info) => isAudited(info, enabled),
        logParameters: settings.logParameters,
        recordsEverything: AUDIT_CLASSES.every((c) => enabled.has(c)),
      };
    }
    this.byServer.set(server, { key, config });
    return config;
  }
}

/** The statement audit of one relayed session, a consumer of its observer. */
export function startSessionAudit(
  config: StatementAuditConfig,
  onStatement: (e: StatementEvent) => void,
  onError: (reason: string) => void,
  /** The clock statements are timed by (the observer's: when the relay read their bytes). */
  now?: () => number,
): StatementAuditConsumer {
  const { classifier, include, logParameters } = config;
  return new StatementAuditConsumer({ classifier, include, logParameters, onStatement, onError, ...(now ? { now } : {}) });
}
