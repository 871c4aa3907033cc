// Searching the audit store: a filter over its records, oldest first, with paging by seq.
import { readRecords } from './store/index.js';

export interface AuditQuery {
  readonly server?: string;
  readonly user?: string;
  /** Statement class (READ, WRITE, ...). */
  readonly class?: string;
  readonly outcome?: 'success' | 'failure';
  readonly type?: string;
  readonly since?: Date;
  readonly until?: Date;
  /** Case-insensitive substring of the whole event. */
  readonly text?: string;
  /** Records after this seq (paging). */
  readonly afterSeq?: number;
  readonly limit?: number;
}

export interface AuditHit {
  readonly seq: number;
  readonly time: string;
  readonly hash: string;
  readonly event: Record<string, unknown>;
}

const FAILURE_TYPES = new Set([
  'auth.failed',
  'connection.denied',
  'server.crashed',
  'server.restart_failed',
  'server.inaccessible',
  'catalog.disconnected',
  'gateway.worker_exited',
]);

/** success or failure, as the event says it. */
export function outcomeOf(event: Record<string, unknown>): 'success' | 'failure' {
  if (typeof event.outcome === 'string') return event.outcome === 'failure' ? 'failure' : 'success';
  return FAILURE_TYPES.has(String(event.type)) ? 'failure' : 'success';
}

export function matches(event: Record<string, unknown>, time: string, q: AuditQuery): boolean {
  if (q.server !== undefined && event.server !== q.server) return false;
  if (q.user !== undefined && event.user !== q.user) return false;
  if (q.type !== undefined && event.type !== q.type) return false;
  if (q.class !== undefined && String(event.class ?? '').toUpperCase() !== q.class.toUpperCase()) return false;
  if (q.outcome !== undefined && outcomeOf(event) !== q.outcome) return false;
  const t = Date.parse(time);
  if (q.since && t < q.since.getTime()) return false;
  if (q.until && t > q.until.getTime()) return false;
  if (q.text !== undefined && !JSON.stringify(event).toLowerCase().includes(q.text.toLowerCase())) return false;
  return true;
}

export async function searchAudit(dir: string, q: AuditQuery): Promise<{ hits: AuditHit[]; nextAfterSeq: number | null }> {
  const limit = Math.min(q.limit ?? 100, 1000);
  const hits: AuditHit[] = [];
  for await (const r of readRecords(dir, { fromSeq: (q.afterSeq ?? 0) + 1 })) {
    const event = r.event as Record<string, unknown>;
    if (!matches(event, r.time, q)) continue;
    if (hits.length === limit) return { hits, nextAfterSeq: hits[hits.length - 1]!.seq };
    hits.push({ seq: r.seq, time: r.time, hash: r.hash, event });
  }
  return { hits, nextAfterSeq: null };
}
