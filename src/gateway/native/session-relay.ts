// Step 9 on the native relay: an authenticated session (no pooling, or session pooling) handed to
// the addon, which relays client ⇄ server on its own threads. What stays here: the session's
// observer, fed the addon's 'observe' batches (the statement audit and the SQL watch run in
// JavaScript as with relay.ts), strict durability (a held server chunk is released once the audit
// records it completed are on disk), ending the session from the gateway's side, and the end:
// the same RelayStats, and a pooled server connection given back, reusable as the addon says.
import type net from 'node:net';
import { errorResponse, type ObserverClock, type SessionObserver } from '../../pgwire/index.js';
import { SERVER_GONE, type PooledServer, type RelayHandle, type RelayStats } from '../relay.js';
import type { AddonEvent } from './addon.js';
import type { NativeClientSocket } from './client-socket.js';
import { resumeReading, stopReading, type Summaries } from './host.js';

/** Sessions handed to the addon in this process (read by the tests). */
export const nativeRelayCounters = { sessions: 0, summaries: 0, records: 0 };

export function nativeRelay(opts: {
  client: NativeClientSocket;
  server: net.Socket;
  /** Client bytes read past the handshake (the Wire's rest). */
  clientRest: Buffer;
  serverRest: Buffer;
  /** Null: nothing observes the session (no 'observe' events). */
  observer: SessionObserver | null;
  /** The observer's consumers' clock: set to the addon's read times while it is fed. */
  clock?: ObserverClock;
  /** Said to the client when its own stream cannot be framed (the consumer that fails closed). */
  clientFramingError?: Buffer;
  /** The addon's quiet set for this session's statements (0: none; see RelayOptions.quietSet):
   * the observer was made with an `onQuiet` that adds to it. */
  quietSet?: number;
  /** The quiet set's summarized shapes ('summary' events name them by number). */
  summaries?: Summaries;
  /** The session's record parts, and the host's sink (numbered `sink`) its summarized
   * statements' records go to, in runs. */
  record?: { readonly parts: Buffer; readonly sink: number };
  /** Strict audit durability (see relay.ts). */
  hold?: () => Promise<void> | null;
  onHandle?: (handle: RelayHandle) => void;
  /** The server connection is a pool's: given back instead of closed. */
  pooled?: PooledServer;
  onEnd: (stats: RelayStats) => void;
}): RelayHandle {
  const { client, server, observer, pooled } = opts;
  const addon = client.host.addon;
  const id = client.id;
  /** The addon relays the session (relay() was called) / forgot it ('closed'). */
  let relaying = false;
  let closed = false;
  /** terminate() before the relay started: applied when it starts (or instead of it). */
  let pendingFatal: Buffer | null = null;
  let ended = false;

  const finish = (stats: RelayStats) => {
    if (ended) return;
    ended = true;
    observer?.end();
    opts.onEnd(stats);
  };
  const release = () => {
    if (closed) return;
    try {
      addon.release(id);
    } catch {
      // The connection closed meanwhile.
    }
  };

  const handle: RelayHandle = {
    terminate(error) {
      if (closed || ended) return;
      const fatal = errorResponse({ severity: 'FATAL', sqlstate: error.sqlstate, message: error.message });
      if (relaying) addon.terminate(id, fatal);
      else pendingFatal ??= fatal;
    },
  };
  opts.onHandle?.(handle);

  const onEvent = (e: AddonEvent) => {
    if (e.type === 'summary') {
      if (observer) summarized(observer, e);
      return;
    }
    if (e.type === 'observe') {
      if (observer) {
        const clock = opts.clock;
        try {
          if (e.client) {
            clock?.set(e.clientAt);
            observer.fromClient(e.client);
          }
          if (e.server) {
            clock?.set(e.serverAt);
            observer.fromServer(e.server);
          }
        } finally {
          clock?.set(null);
        }
      }
      if (e.hold) {
        // The statement events this chunk completed were published just now (fromServer).
        const wait = opts.hold?.() ?? null;
        if (wait) wait.then(release, release);
        else release();
      }
      return;
    }
    if (e.type !== 'closed') return;
    closed = true;
    // The addon closed the session on bytes it could not frame: the consumers cannot follow
    // it either, and say so (audit.tap-stopped, threat.watch-stopped), as on the JavaScript relay.
    if (observer && e.error?.includes('framing error')) observer.fail(e.error);
    if (pooled) {
      resumeReading(server); // read again by the pool (idle watch, reset) when it is lent again
      pooled.release(e.reusable && !server.destroyed ? 'idle' : 'broken');
    }
    finish({ bytesFromClient: e.bytesFromClient, bytesToClient: e.bytesToClient });
  };

  const summarized = (o: SessionObserver, e: Extract<AddonEvent, { type: 'summary' }>) => {
    const summary = opts.summaries?.[e.shape - 1];
    // A statement the audit cannot record: the session cannot go on (fail closed).
    if (summary === undefined) return o.fail(`the native relay summarized a statement of unknown shape ${e.shape}`);
    nativeRelayCounters.summaries++;
    const clock = opts.clock;
    clock?.set(e.end);
    try {
      o.summarized(summary, e.text.toString('utf8'), e.at, e.end, e.tag);
    } finally {
      clock?.set(null);
    }
  };

  /** The client left (or the session was ended) before the addon relayed it. */
  const endBeforeRelay = (fatal: Buffer | null) => {
    if (fatal) client.end(fatal);
    else client.destroy();
    if (pooled) pooled.release(server.destroyed || fatal ? 'broken' : 'idle');
    else server.destroy();
    finish({ bytesFromClient: opts.clientRest.length, bytesToClient: 0 });
  };

  void client.freeze().then((more) => {
    if (more === null || pendingFatal) return endBeforeRelay(more === null ? null : pendingFatal);
    if (server.destroyed) {
      // The server went before the session started: as the addon would say it.
      client.end(SERVER_GONE);
      if (pooled) pooled.release('broken');
      return finish({ bytesFromClient: opts.clientRest.length + more.length, bytesToClient: 0 });
    }
    const clientRest = more.length ? Buffer.concat([opts.clientRest, more]) : opts.clientRest;
    const { fd, rest } = stopReading(server);
    const serverRest = rest.length ? Buffer.concat([opts.serverRest, rest]) : opts.serverRest;
    client.handOver(onEvent, () => {
      // The gateway closing (its sockets destroyed): the session ends like a terminate without words.
      if (!closed) addon.destroy(id);
    });
    const observe = observer !== null;
    addon.relay(id, fd, {
      clientRest,
      serverRest,
      observe,
      hold: observe && opts.hold !== undefined,
      serverGone: SERVER_GONE,
      clientFramingError: opts.clientFramingError ?? Buffer.alloc(0),
      pooled: pooled !== undefined,
      quietSet: observe ? (opts.quietSet ?? 0) : 0,
      ...(observe && opts.record ? { record: opts.record.parts, recordSink: opts.record.sink } : {}),
    });
    relaying = true;
    nativeRelayCounters.sessions++;
    // The addon holds a duplicate of the server's descriptor; a pooled one stays the pool's.
    if (!pooled) server.destroy();
  });
  return handle;
}
