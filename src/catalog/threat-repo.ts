// Threat protection in the catalog: each server's security alert policy, alerts, their
// deliveries, the detectors' baselines and per-minute login counts.
import type pg from 'pg';
import { withDefaults, type SecurityAlertPolicy } from '../threat/policy.js';
import type { BaselineRow, BaselineKind } from '../threat/baselines.js';
import type { AlertType, Severity } from '../threat/alert-types.js';
import type { LocationView } from '../threat/finding.js';
import type { LearnedRow } from '../threat/sql/learned.js';
import type { Alert, AlertState, NewAlert } from '../threat/alert.js';
import type { DeliveryResult } from '../threat/notify/types.js';
import type { DeliveryLog, ThreatStore } from '../threat/store.js';

// The domain types live in threat/; re-exported for the repository's users.
export type { Alert, AlertState, NewAlert } from '../threat/alert.js';
export { withDefaults } from '../threat/policy.js';

/** A notifier's outcome as stored (alert_deliveries). */
export type Delivery = DeliveryResult;

export interface AlertFilter {
  readonly server?: string;
  readonly state?: AlertState;
  readonly severity?: Severity;
  readonly type?: string;
  readonly since?: Date;
  readonly limit?: number;
}

interface AlertRow {
  id: string;
  server: string;
  type: AlertType;
  severity: Severity;
  state: AlertState;
  title: string;
  description: string;
  tactic: string;
  principal: string | null;
  source_address: string | null;
  location: LocationView | null;
  first_seen: Date;
  last_seen: Date;
  count: string;
  evidence: Record<string, unknown>;
  recommended_action: string;
  state_changed_by: string | null;
  state_changed_at: Date | null;
}

const ALERT_COLUMNS = `a.id, s.name as server, a.type, a.severity, a.state, a.title, a.description, a.tactic, a.principal,
  a.source_address, a.location, a.first_seen, a.last_seen, a.count, a.evidence, a.recommended_action, a.state_changed_by, a.state_changed_at`;

const fromRow = (r: AlertRow): Alert => ({
  id: r.id,
  server: r.server,
  type: r.type,
  severity: r.severity,
  state: r.state,
  title: r.title,
  description: r.description,
  tactic: r.tactic,
  principal: r.principal,
  sourceAddress: r.source_address,
  location: r.location,
  firstSeen: r.first_seen.toISOString(),
  lastSeen: r.last_seen.toISOString(),
  count: Number(r.count),
  evidence: r.evidence,
  recommendedAction: r.recommended_action,
  stateChangedBy: r.state_changed_by,
  stateChangedAt: r.state_changed_at?.toISOString() ?? null,
});

/** A baseline key as stored: NUL (the detectors' separator, which neither jsonb nor text can
 * hold) as %00, and % as %25 so the encoding is reversible. */
export function encodeBaselineKey(key: string): string {
  return key.replace(/%/g, '%25').replace(/\u0000/g, '%00');
}

export function decodeBaselineKey(stored: string): string {
  return stored.replace(/%(00|25)/g, (_m, code: string) => (code === '00' ? '\u0000' : '%'));
}

/** Baseline rows that could not be stored, with why (the others were). */
export class BaselineWriteError extends Error {
  override readonly name = 'BaselineWriteError';
}

export class ThreatRepo implements ThreatStore, DeliveryLog {
  constructor(private readonly db: pg.Pool) {}

  async policy(serverId: number): Promise<SecurityAlertPolicy> {
    const { rows } = await this.db.query<{ policy: SecurityAlertPolicy }>('select policy from security_alert_policies where server_id = $1', [serverId]);
    return withDefaults(rows[0]?.policy);
  }

  async putPolicy(serverId: number, policy: SecurityAlertPolicy): Promise<SecurityAlertPolicy> {
    await this.db.query(
      `insert into security_alert_policies (server_id, policy) values ($1, $2)
       on conflict (server_id) do update set policy = excluded.policy, updated_at = now()`,
      [serverId, JSON.stringify(policy)],
    );
    return policy;
  }

  /** Every server's policy by name (defaults for servers without a row). */
  async allPolicies(): Promise<Map<string, SecurityAlertPolicy>> {
    const { rows } = await this.db.query<{ name: string; policy: SecurityAlertPolicy | null }>(
      'select s.name, p.policy from servers s left join security_alert_policies p on p.server_id = s.id',
    );
    return new Map(rows.map((r) => [r.name, withDefaults(r.policy)]));
  }

  /** Inserts an alert, or adds to the open alert of the same incident. Returns the alert's id and
   * whether it is new. */
  async raise(a: NewAlert): Promise<{ id: string; created: boolean }> {
    const { rows } = await this.db.query<{ id: string; created: boolean }>(
      `insert into alerts (id, server_id, type, severity, incident_key, title, description, tactic, principal, source_address,
                           location, first_seen, last_seen, count, evidence, recommended_action)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       on conflict (server_id, type, severity, incident_key) where state = 'Active'
       do update set count = alerts.count + excluded.count, last_seen = greatest(alerts.last_seen, excluded.last_seen)
       returning id, (xmax = 0) as created`,
      [
        a.id,
        a.serverId,
        a.type,
        a.severity,
        a.incidentKey,
        a.title,
        a.description,
        a.tactic,
        a.principal,
        a.sourceAddress,
        a.location ? JSON.stringify(a.location) : null,
        a.firstSeen,
        a.lastSeen,
        a.count,
        JSON.stringify(a.evidence),
        a.recommendedAction,
      ],
    );
    return rows[0]!;
  }

  async addCount(id: string, count: number, lastSeen: string): Promise<void> {
    await this.db.query('update alerts set count = count + $2, last_seen = greatest(last_seen, $3) where id = $1', [id, count, lastSeen]);
  }

  async list(f: AlertFilter): Promise<Alert[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (f.server) add('s.name = ?', f.server);
    if (f.state) add('a.state = ?', f.state);
    if (f.severity) add('a.severity = ?', f.severity);
    if (f.type) add('a.type = ?', f.type);
    if (f.since) add('a.last_seen >= ?', f.since);
    args.push(Math.min(f.limit ?? 200, 1000));
    const { rows } = await this.db.query<AlertRow>(
      `select ${ALERT_COLUMNS} from alerts a join servers s on s.id = a.server_id
        ${where.length ? `where ${where.join(' and ')}` : ''} order by a.last_seen desc limit $${args.length}`,
      args,
    );
    return rows.map(fromRow);
  }

  async get(server: string, id: string): Promise<Alert | null> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
    const { rows } = await this.db.query<AlertRow>(
      `select ${ALERT_COLUMNS} from alerts a join servers s on s.id = a.server_id where s.name = $1 and a.id = $2`,
      [server, id],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async setState(server: string, id: string, state: AlertState, by: string): Promise<Alert | null> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
    await this.db.query(
      `update alerts a set state = $3, state_changed_by = $4, state_changed_at = now()
         from servers s where s.id = a.server_id and s.name = $1 and a.id = $2`,
      [server, id, state, by],
    );
    return this.get(server, id);
  }

  async recordDelivery(d: Delivery): Promise<void> {
    await this.db.query('insert into alert_deliveries (alert_id, channel, target, outcome, attempts, error, time) values ($1, $2, $3, $4, $5, $6, $7)', [
      d.alertId,
      d.channel,
      d.target,
      d.outcome,
      d.attempts,
      d.error ?? null,
      d.time,
    ]);
  }

  async deliveries(alertId: string): Promise<Delivery[]> {
    const { rows } = await this.db.query<{
      alert_id: string;
      channel: Delivery['channel'];
      target: string;
      outcome: Delivery['outcome'];
      attempts: number;
      error: string | null;
      time: Date;
    }>('select * from alert_deliveries where alert_id = $1 order by id', [alertId]);
    return rows.map((r) => ({
      alertId: r.alert_id,
      channel: r.channel,
      target: r.target,
      outcome: r.outcome,
      attempts: r.attempts,
      ...(r.error ? { error: r.error } : {}),
      time: r.time.toISOString(),
    }));
  }

  async baselines(): Promise<BaselineRow[]> {
    const { rows } = await this.db.query<{ server: string; kind: BaselineKind; key: string; first_seen: Date; last_seen: Date }>(
      'select s.name as server, b.kind, b.key, b.first_seen, b.last_seen from threat_baselines b join servers s on s.id = b.server_id',
    );
    return rows.map((r) => ({
      server: r.server,
      kind: r.kind,
      key: decodeBaselineKey(r.key),
      firstSeen: r.first_seen.getTime(),
      lastSeen: r.last_seen.getTime(),
    }));
  }

  /** Stores baseline rows in one statement; when that fails, row by row, so one bad row never
   * costs the others. Throws BaselineWriteError naming what could not be stored. */
  async saveBaselines(rows: readonly BaselineRow[]): Promise<void> {
    if (!rows.length) return;
    try {
      await this.writeBaselines(rows);
      return;
    } catch (err) {
      if (rows.length === 1)
        throw new BaselineWriteError(`a threat baseline row (${rows[0]!.server}/${rows[0]!.kind}) could not be stored: ${(err as Error).message}`);
    }
    const failed: string[] = [];
    for (const r of rows) {
      try {
        await this.writeBaselines([r]);
      } catch (err) {
        failed.push(`${r.server}/${r.kind}: ${(err as Error).message}`);
      }
    }
    if (failed.length)
      throw new BaselineWriteError(`${failed.length} of ${rows.length} threat baseline rows could not be stored (${failed.slice(0, 3).join('; ')})`);
  }

  private async writeBaselines(rows: readonly BaselineRow[]): Promise<void> {
    await this.db.query(
      `insert into threat_baselines (server_id, kind, key, first_seen, last_seen)
       select s.id, r.kind, r.key, r.first_seen, r.last_seen
         from jsonb_to_recordset($1::jsonb) as r(server text, kind text, key text, first_seen timestamptz, last_seen timestamptz)
         join servers s on s.name = r.server
       on conflict (server_id, kind, key) do update set last_seen = greatest(threat_baselines.last_seen, excluded.last_seen)`,
      [
        JSON.stringify(
          rows.map((r) => ({
            server: r.server,
            kind: r.kind,
            key: encodeBaselineKey(r.key),
            first_seen: new Date(r.firstSeen).toISOString(),
            last_seen: new Date(r.lastSeen).toISOString(),
          })),
        ),
      ],
    );
  }

  async forgetBaselines(serverId: number): Promise<void> {
    await this.db.query('delete from threat_baselines where server_id = $1', [serverId]);
  }

  /** Every server's learned application shapes (SQL-injection detector). */
  async learnedShapes(): Promise<(LearnedRow & { server: string })[]> {
    const { rows } = await this.db.query<{
      server: string;
      role: string;
      application: string;
      fingerprint: string;
      shape: string;
      first_seen: Date;
      last_seen: Date;
    }>(
      `select s.name as server, l.role, l.application, l.fingerprint, l.shape, l.first_seen, l.last_seen
         from sql_learned_shapes l join servers s on s.id = l.server_id order by l.first_seen`,
    );
    return rows.map((r) => ({
      server: r.server,
      role: r.role,
      application: r.application,
      fingerprint: r.fingerprint,
      shape: r.shape,
      firstSeen: r.first_seen.getTime(),
      lastSeen: r.last_seen.getTime(),
    }));
  }

  /** Stores learned shapes of one server (bounded by the detector before they get here). */
  async saveLearnedShapes(server: string, rows: readonly LearnedRow[]): Promise<void> {
    if (!rows.length) return;
    await this.db.query(
      `insert into sql_learned_shapes (server_id, role, application, fingerprint, shape, first_seen, last_seen)
       select s.id, r.role, r.application, r.fingerprint, r.shape, r.first_seen, r.last_seen
         from jsonb_to_recordset($2::jsonb) as r(role text, application text, fingerprint text, shape text, first_seen timestamptz, last_seen timestamptz)
         join servers s on s.name = $1
       on conflict (server_id, role, application, fingerprint) do update set last_seen = greatest(sql_learned_shapes.last_seen, excluded.last_seen)`,
      [
        server,
        JSON.stringify(
          rows.map((r) => ({
            role: r.role,
            application: r.application,
            fingerprint: r.fingerprint,
            shape: r.shape,
            first_seen: new Date(r.firstSeen).toISOString(),
            last_seen: new Date(r.lastSeen).toISOString(),
          })),
        ),
      ],
    );
  }

  /** Adds per-minute login counts: [server name, bucket start ms, succeeded, failed]. */
  async addLoginStats(rows: readonly (readonly [string, number, number, number])[]): Promise<void> {
    if (!rows.length) return;
    await this.db.query(
      `insert into login_stats (server_id, bucket, succeeded, failed)
       select s.id, to_timestamp(r.bucket / 1000.0), r.succeeded, r.failed
         from jsonb_to_recordset($1::jsonb) as r(server text, bucket bigint, succeeded bigint, failed bigint)
         join servers s on s.name = r.server
       on conflict (server_id, bucket) do update set succeeded = login_stats.succeeded + excluded.succeeded, failed = login_stats.failed + excluded.failed`,
      [JSON.stringify(rows.map(([server, bucket, succeeded, failed]) => ({ server, bucket, succeeded, failed })))],
    );
  }

  /** Login counts per bucket of `bucketSeconds` (a multiple of 60) since `since`. */
  async loginStats(server: string, since: Date, bucketSeconds: number): Promise<{ time: string; succeeded: number; failed: number }[]> {
    const { rows } = await this.db.query<{ time: Date; succeeded: string; failed: string }>(
      `select to_timestamp(floor(extract(epoch from l.bucket) / $3) * $3) as time, sum(l.succeeded) as succeeded, sum(l.failed) as failed
         from login_stats l join servers s on s.id = l.server_id
        where s.name = $1 and l.bucket >= $2 group by 1 order by 1`,
      [server, since, bucketSeconds],
    );
    return rows.map((r) => ({ time: r.time.toISOString(), succeeded: Number(r.succeeded), failed: Number(r.failed) }));
  }

  /** Deletes alerts (and login counts) older than each server's retention. */
  async purge(retentionDays: ReadonlyMap<string, number>): Promise<number> {
    let n = 0;
    for (const [server, days] of retentionDays) {
      const r = await this.db.query(
        `delete from alerts a using servers s where s.id = a.server_id and s.name = $1 and a.last_seen < now() - make_interval(days => $2)`,
        [server, days],
      );
      await this.db.query(
        `delete from login_stats l using servers s where s.id = l.server_id and s.name = $1 and l.bucket < now() - make_interval(days => $2)`,
        [server, days],
      );
      n += r.rowCount ?? 0;
    }
    return n;
  }
}
