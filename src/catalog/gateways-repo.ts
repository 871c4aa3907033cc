// The registry of gateway processes (catalog table `gateways`): where each one's API is, the
// public key its audit stream is signed with, and the host it runs on. A gateway writes its row
// at start and refreshes `last_seen`; the platform reads the rows of other hosts to verify and
// search their streams. Rows are kept when a gateway stops: its stream still exists, and a
// gateway that no longer answers must show up as unreachable, not vanish from `audit verify`.
import type pg from 'pg';

export interface GatewayEntry {
  /** The stream's name: 'gw-<port>' on the platform's host, 'gw-<hostId>-<port>' elsewhere. */
  readonly name: string;
  readonly apiUrl: string;
  readonly auditPublicKey: string;
  readonly hostId: string;
  readonly startedAt: Date;
  readonly lastSeen: Date;
}

interface Row {
  name: string;
  api_url: string;
  audit_public_key: string;
  host_id: string;
  started_at: Date;
  last_seen: Date;
}

export class GatewaysRepo {
  constructor(private readonly db: pg.Pool) {}

  /** At start: this process's row (a restart on the same name replaces the old one). */
  async register(e: { name: string; apiUrl: string; auditPublicKey: string; hostId: string }): Promise<void> {
    await this.db.query(
      `insert into gateways (name, api_url, audit_public_key, host_id, started_at, last_seen)
       values ($1, $2, $3, $4, now(), now())
       on conflict (name) do update set api_url = excluded.api_url, audit_public_key = excluded.audit_public_key,
         host_id = excluded.host_id, started_at = now(), last_seen = now()`,
      [e.name, e.apiUrl, e.auditPublicKey, e.hostId],
    );
  }

  /** Still here (every 10 s). */
  async touch(name: string): Promise<void> {
    await this.db.query('update gateways set last_seen = now() where name = $1', [name]);
  }

  /** Every gateway registered from a host other than `hostId`, by name. */
  async elsewhere(hostId: string): Promise<GatewayEntry[]> {
    const { rows } = await this.db.query<Row>('select * from gateways where host_id <> $1 order by name', [hostId]);
    return rows.map((r) => ({
      name: r.name,
      apiUrl: r.api_url,
      auditPublicKey: r.audit_public_key,
      hostId: r.host_id,
      startedAt: r.started_at,
      lastSeen: r.last_seen,
    }));
  }
}
