// The pgAudit reader thread: reads the servers' new log lines and parses the pgAudit ones off the
// platform's event loop (pgaudit-scan.ts). Per scan: the platform sends the servers and its read
// offsets; this answers with the (server, pid) pairs seen; the platform answers with the gateway
// sessions among them; this answers with the events to publish and the new offsets. The platform
// owns the offsets: a scan it drops (at stop) leaves them as they were.
import { parentPort } from 'node:worker_threads';
import { collectLines, finishLines, type Collected, type JoinedSession, type ServerLogs } from './pgaudit-scan.js';

export type ToReader =
  | {
      readonly t: 'scan';
      readonly id: number;
      readonly servers: readonly ServerLogs[];
      readonly offsets: Readonly<Record<string, number>>;
      /** Lines logged after this (ms) wait for a later scan (collectLines). */
      readonly notAfter: number;
    }
  | { readonly t: 'sessions'; readonly id: number; readonly sessions: readonly (readonly [string, JoinedSession])[] };

export type FromReader =
  | { readonly t: 'keys'; readonly id: number; readonly keys: readonly string[] }
  | {
      readonly t: 'events';
      readonly id: number;
      readonly events: ReturnType<typeof finishLines>;
      readonly offsets: Record<string, number>;
      /** Every file was read to its end or to `notAfter` (collectLines). */
      readonly complete: boolean;
    }
  | { readonly t: 'failed'; readonly id: number; readonly message: string };

const port = parentPort;
if (port) {
  let held: { id: number; collected: Collected } | null = null;
  port.on('message', (m: ToReader) => {
    try {
      if (m.t === 'scan') {
        const collected = collectLines(m.servers, m.offsets, undefined, m.notAfter);
        held = { id: m.id, collected };
        port.postMessage({ t: 'keys', id: m.id, keys: collected.keys } satisfies FromReader);
      } else if (held?.id === m.id) {
        const { collected } = held;
        held = null;
        const events = finishLines(collected.lines, new Map(m.sessions));
        port.postMessage({ t: 'events', id: m.id, events, offsets: collected.offsets, complete: collected.complete } satisfies FromReader);
      }
    } catch (err) {
      held = null;
      port.postMessage({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) } satisfies FromReader);
    }
  });
}
