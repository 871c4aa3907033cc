// Server parameters the owner set (configurations), by server: name → value as given (checked).
import type pg from 'pg';
import { inTransaction } from './network-repo.js';

export class ServerParametersRepo {
  constructor(private readonly db: pg.Pool) {}

  async get(serverId: number): Promise<Record<string, string>> {
    const { rows } = await this.db.query<{ name: string; value: string }>('select name, value from server_parameters where server_id = $1', [serverId]);
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  /** Replaces the server's whole set in one transaction. */
  async put(serverId: number, values: Readonly<Record<string, string>>): Promise<void> {
    await inTransaction(this.db, async (client) => {
      await client.query('delete from server_parameters where server_id = $1', [serverId]);
      for (const [name, value] of Object.entries(values)) {
        await client.query('insert into server_parameters (server_id, name, value) values ($1, $2, $3)', [serverId, name, value]);
      }
    });
  }

  /** A restored server gets its source's parameters. */
  async copy(fromId: number, toId: number): Promise<void> {
    await this.db.query(
      `insert into server_parameters (server_id, name, value) select $2, name, value from server_parameters where server_id = $1
       on conflict (server_id, name) do update set value = excluded.value, updated_at = now()`,
      [fromId, toId],
    );
  }

  /** Every server's parameters, by server id. */
  async all(): Promise<Map<number, Record<string, string>>> {
    const { rows } = await this.db.query<{ server_id: number; name: string; value: string }>('select server_id, name, value from server_parameters');
    const out = new Map<number, Record<string, string>>();
    for (const r of rows) out.set(r.server_id, { ...(out.get(r.server_id) ?? {}), [r.name]: r.value });
    return out;
  }
}
