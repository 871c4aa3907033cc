// Statement audit at the gateway: per server, the classifier and filter its audit settings ask
// for (rebuilt only when the settings change), and the per-session tap that turns the relayed
// protocol into statement events.
import { Classifier, isAudited, parseClassList, type StatementInfo } from './classify/index.js';
import { StatementAuditConsumer, type StatementEvent } from './tap/index.js';
import type { AuditSettings } from '../catalog/audit-settings-repo.js';
import type { ConnectionContext, StatementExecuted } from '../events/types.js';

export interface StatementAuditConfig {
  readonly classifier: Classifier;
  readonly include: (info: StatementInfo) => boolean;
  readonly logParameters: boolean;
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
      };
    }
    this.byServer.set(server, { key, config });
    return config;
  }
}

/** The statement audit of one relayed session, a consumer of its observer. */
export function startSessionAudit(config: StatementAuditConfig, onStatement: (e: StatementEvent) => void, onError: (reason: string) => void): StatementAuditConsumer {
  return new StatementAuditConsumer({ classifier: config.classifier, include: config.include, logParameters: config.logParameters, onStatement, onError });
}

/** The session's fields an event carries (as the gateway publishes them). */
export interface SessionFields {
  readonly server?: string;
  readonly user?: string;
  readonly database?: string;
  readonly applicationName?: string;
  readonly objectId?: string;
}

/**
 * The session's connection with its keys in canonical (sorted) order, built once per session: the
 * audit store serializes an object whose keys are in order as it is, without a sorted copy.
 */
export function orderedConnection(conn: ConnectionContext): ConnectionContext {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(conn).sort()) out[key] = (conn as unknown as Record<string, unknown>)[key];
  return out as unknown as ConnectionContext;
}

/**
 * The `statement` event of one audited statement, built once, with its keys inserted in canonical
 * order (the store then serializes it without copying it). The same fields as
 * `{ type, time, connection, ...fields, ...st }`.
 */
export function statementExecuted(time: string, connection: ConnectionContext, f: SessionFields, st: StatementEvent): StatementExecuted {
  const e: Record<string, unknown> = {};
  if (f.applicationName !== undefined) e.applicationName = f.applicationName;
  e.class = st.class;
  e.classes = st.classes;
  e.commandTag = st.commandTag;
  e.connection = connection;
  if (st.copyBytes !== undefined) e.copyBytes = st.copyBytes;
  if (f.database !== undefined) e.database = f.database;
  e.durationMs = st.durationMs;
  if (st.errorMessage !== undefined) e.errorMessage = st.errorMessage;
  if (f.objectId !== undefined) e.objectId = f.objectId;
  e.objects = st.objects;
  e.outcome = st.outcome;
  if (st.params !== undefined) e.params = st.params;
  if (st.parseError !== undefined) e.parseError = st.parseError;
  e.protocol = st.protocol;
  if (st.rows !== undefined) e.rows = st.rows;
  if (f.server !== undefined) e.server = f.server;
  if (st.sqlstate !== undefined) e.sqlstate = st.sqlstate;
  e.text = st.text;
  if (st.textLength !== undefined) e.textLength = st.textLength;
  if (st.textSha256 !== undefined) e.textSha256 = st.textSha256;
  e.time = time;
  if (st.truncated !== undefined) e.truncated = st.truncated;
  e.type = 'statement';
  if (f.user !== undefined) e.user = f.user;
  return e as unknown as StatementExecuted;
}
