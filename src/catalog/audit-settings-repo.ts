// Statement audit settings per server (SPEC.md §2 auditSettings). A server without a row has
// the defaults: ROLE and DDL statements, no parameters, 90 days.
import type pg from 'pg';

export const AUDIT_CLASSES = ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC', 'MISC_SET'] as const;
export type AuditClass = (typeof AUDIT_CLASSES)[number];

export interface AuditSettings {
  readonly classes: readonly AuditClass[];
  readonly logParameters: boolean;
  /** Column names or regular expressions whose values are redacted in logged statements and parameters. */
  readonly redact: readonly string[];
  readonly retentionDays: number;
}

export const DEFAULT_AUDIT_SETTINGS: AuditSettings = { classes: ['ROLE', 'DDL'], logParameters: false, redact: [], retentionDays: 90 };

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
    const { rows } = await this.db.query<Row>(
      `select s.name as server, coalesce(a.classes, '{ROLE,DDL}') as classes, coalesce(a.log_parameters, false) as log_parameters,
              coalesce(a.redact, '{}') as redact, coalesce(a.retention_days, 90) as retention_days
         from servers s left join audit_settings a on a.server_id = s.id`,
    );
    return new Map(rows.map((r) => [r.server, fromRow(r)]));
  }
}
