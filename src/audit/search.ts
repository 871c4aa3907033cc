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

/** One gateway's chained log: the platform's, or a `pgwarden gateway` process's. */
export interface AuditStreamDir {
  /** How records name it: 'platform', 'gw-6544'. */
  readonly name: string;
  readonly dir: string;
}

/** A stream kept by a gateway on another host, read through that gateway's own API. */
export interface RemoteReader {
  /** Its API, for messages. */
  readonly url: string;
  /** The key its checkpoints must be signed with: the one registered in the catalog. */
  readonly publicKeyPem: string;
  /** Its matching records after `afterSeq`, oldest first, fetched page by page. */
  records(q: Omit<AuditQuery, 'afterSeq'>, afterSeq: number): AsyncGenerator<AuditHit>;
  /** Copies its store files here, calls `use` on the copy, removes the copy. Throws before
   * calling `use` when the gateway does not answer. */
  withStoreCopy<T>(use: (dir: string) => Promise<T>): Promise<T>;
}

export interface RemoteStream {
  /** How records name it: 'gw-<hostId>-<port>'. */
  readonly name: string;
  readonly remote: RemoteReader;
}

/** A stream a search reads: on this host's disk, or through another gateway's API. */
export type SearchableStream = AuditStreamDir | RemoteStream;

/** A stream a search could not read (its gateway did not answer), and why. */
export interface MissingStream {
  readonly stream: string;
  readonly reason: string;
}

/** A record and the stream it is in (seq and hash are that stream's). */
export interface StreamHit extends AuditHit {
  readonly gateway: string;
}

/** Where a merged search stopped: per stream, the last seq returned. */
export type StreamCursor = Readonly<Record<string, number>>;

const STREAM_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** 'platform:120,gw-6544:33'; a bare number is a seq of the first stream (a cursor of one stream). */
export function parseCursor(text: string | undefined, firstStream: string): StreamCursor | null {
  if (text === undefined || text === '') return {};
  if (/^[0-9]{1,15}$/.test(text)) return { [firstStream]: Number(text) };
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const i = part.lastIndexOf(':');
    const name = part.slice(0, i);
    const seq = part.slice(i + 1);
    if (i < 1 || !STREAM_NAME.test(name) || !/^[0-9]{1,15}$/.test(seq)) return null;
    out[name] = Number(seq);
  }
  return out;
}

export function formatCursor(c: StreamCursor): string {
  return Object.entries(c)
    .map(([name, seq]) => `${name}:${seq}`)
    .join(',');
}

interface Head {
  readonly stream: SearchableStream;
  readonly order: number;
  readonly records: AsyncGenerator<StreamHit>;
  hit: StreamHit | null;
}

async function* matching(stream: SearchableStream, fromSeq: number, q: AuditQuery): AsyncGenerator<StreamHit> {
  if ('remote' in stream) {
    // The remote gateway filters; its records name its stream as this platform knows it.
    for await (const h of stream.remote.records(q, fromSeq - 1)) yield { seq: h.seq, time: h.time, hash: h.hash, event: h.event, gateway: stream.name };
    return;
  }
  for await (const r of readRecords(stream.dir, { fromSeq })) {
    const event = r.event as Record<string, unknown>;
    if (matches(event, r.time, q)) yield { seq: r.seq, time: r.time, hash: r.hash, event, gateway: stream.name };
  }
}

/** The streams' matching records merged by time (ties: in the order the streams are given),
 * each naming its stream; `next` is where the following page starts, null at the end. A remote
 * stream whose gateway does not answer is left out and named in `missing`, with the reason:
 * the answer holds what the other streams have. */
export async function searchStreams(
  streams: readonly SearchableStream[],
  q: Omit<AuditQuery, 'afterSeq'> & { readonly after?: StreamCursor },
): Promise<{ hits: StreamHit[]; next: StreamCursor | null; missing: MissingStream[] }> {
  const limit = Math.min(q.limit ?? 100, 1000);
  const cursor: Record<string, number> = { ...q.after };
  const missing: MissingStream[] = [];
  const heads: Head[] = streams.map((stream, order) => ({ stream, order, records: matching(stream, (q.after?.[stream.name] ?? 0) + 1, q), hit: null }));
  const advance = async (h: Head): Promise<void> => {
    try {
      h.hit = (await h.records.next()).value ?? null;
    } catch (err) {
      // Only a remote stream fails here (its gateway's API); a local read error is the caller's.
      if (!('remote' in h.stream)) throw err;
      h.hit = null;
      missing.push({ stream: h.stream.name, reason: (err as Error).message });
    }
  };
  try {
    for (const h of heads) await advance(h);
    const hits: StreamHit[] = [];
    for (;;) {
      let best: Head | null = null;
      for (const h of heads) if (h.hit && (!best || earlier(h, best))) best = h;
      if (!best) return { hits, next: null, missing };
      if (hits.length === limit) return { hits, next: cursor, missing };
      hits.push(best.hit!);
      cursor[best.stream.name] = best.hit!.seq;
      await advance(best);
    }
  } finally {
    for (const h of heads) await h.records.return(undefined).catch(() => undefined);
  }
}

function earlier(a: Head, b: Head): boolean {
  const ta = Date.parse(a.hit!.time);
  const tb = Date.parse(b.hit!.time);
  return ta < tb || (ta === tb && a.order < b.order);
}
