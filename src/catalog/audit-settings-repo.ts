// Statement audit settings per server (SPEC.md §2 auditSettings). A server without a row has
// the defaults: ROLE and DDL statements, no parameters, 90 days.
import type pg from 'pg';
import { DEFAULT_AUDIT_SETTINGS, type AuditClass, type AuditSettings } from '../audit/settings.js';

// The domain types live in audit/settings.ts; re-exported for the repository's users.
export { AUDIT_CLASSES, DEFAULT_AUDIT_SETTINGS, type AuditClass, type AuditSettings } from '../audit/settings.js';

interface Row {
  server: string;
  classes: AuditClass[];
  log_parameters: boolean;
  redact: string[];
  retention_days: number;
}

const fromRow = (r: Row): AuditSettings => ({ classes: r.classes, logParameters: r.log_parameters, redact: r.redact, retentionDays: r.retention_days });

export class AuditSettingsRepo {
  constructor(private readonly db: pg.Pool) {}

  async get(serverId: number): Promise<AuditSettings> {
    const { rows } = await this.db.query<Row>('select null as server, * from audit_settings where server_id = $1', [serverId]);
    return rows[0] ? fromRow(rows[0]) : DEFAULT_AUDIT_SETTINGS;
  }

  async put(serverId: number, s: AuditSettings): Promise<AuditSettings> {
    const { rows } = await this.db.query<Row>(
      `insert into audit_settings (server_id, classes, log_parameters, redact, retention_days) values ($1, $2, $3, $4, $5)
       on conflict (server_id) do update set classes = excluded.classes, log_parameters = excluded.log_parameters,
         redact = excluded.redact, retention_days = excluded.retention_days, updated_at = now()
       returning null as server, *`,
      [serverId, s.classes, s.logParameters, s.redact, s.retentionDays],
    );
    return fromRow(rows[0]!);
  }

  /** Every server's settings by name (servers without a row get the defaults). */
  async all(): Promise<Map<string, AuditSettings>> {
    const { rows } = await this.db.query<Row | (Omit<Row, 'classes'> & { classes: null })>(
      `select s.name as server, a.classes, a.log_parameters, a.redact, a.retention_days
         from servers s left join audit_settings a on a.server_id = s.id`,
    );
    return new Map(rows.map((r) => [r.server, r.classes === null ? DEFAULT_AUDIT_SETTINGS : fromRow(r)]));
  }
}
