// The native relay addon in this process (addon.ts is the contract): loaded and started once,
// its events routed by connection id to the object that owns the connection (the client socket
// of client-socket.ts, then its relayed session), and the gateway's certificates loaded into it
// by ActiveCertificate, so a rotation or a reissue reaches new handshakes at once.
import type net from 'node:net';
import { availableParallelism } from 'node:os';
import { clockOffset, decodeEvents, eventTaker, loadRelayAddon, type AddonEvent, type RelayAddon } from './addon.js';
import type { ActiveCertificate } from '../tls-certificates.js';
import type { QuerySummary } from '../../pgwire/index.js';

/** The summaries of a quiet set's summarized shapes: the shape numbered n is at n - 1. */
export type Summaries = QuerySummary[];

/** Summarized shapes per quiet set (the addon's bound on its keys). */
const MAX_SUMMARIES = 4096;

/** Takes statement records in a row: `count` of them in `data`, each as its length (u32 LE) and
 * its canonical JSON (addon.ts 'records'). */
export type RecordsSink = (data: Buffer, count: number) => void;

/** Which relay carries sessions: the addon's threads, or the JavaScript relay (relay.ts). */
export type RelayMode = 'js' | 'native';

/** A certificate replaced by a newer one stays loaded this long, for the handshakes that were
 * answered with it a moment before. */
const DROP_AFTER_MS = 30_000;

export class NativeRelayHost {
  private readonly handlers = new Map<number, (event: AddonEvent) => void>();
  private readonly certIds = new WeakMap<ActiveCertificate, number>();
  /** The certificate loaded last: a newer one drops it (after DROP_AFTER_MS). */
  private latest: { cert: ActiveCertificate; id: number } | null = null;
  private nextCertId = 1;
  /** Quiet sets by the audit configuration they serve; dropped in the addon with it. */
  private readonly quietSets = new WeakMap<object, number>();
  private readonly quietDrops = new FinalizationRegistry<number>((set) => this.dropQuietSet(set));
  /** The summaries of each quiet set's summarized shapes (a session keeps its set's list). */
  private readonly summaries = new Map<number, Summaries>();

  constructor(
    readonly addon: RelayAddon,
    threads: number,
  ) {
    const offset = clockOffset(addon);
    const take = eventTaker(addon);
    addon.start(threads, () => {
      // One connection's handler failing must not lose the other connections' events.
      let failure: unknown = null;
      decodeEvents(
        take(),
        (event) => {
          try {
            this.dispatch(event);
          } catch (err) {
            failure ??= err;
          }
        },
        offset,
      );
      if (failure !== null) throw failure;
    });
  }

  /** Where runs of statement records made by the relay go, by the number sessions name them with
   * (RelayOptions.recordSink): one per audit log in the process. */
  private readonly sinks = new Map<number, RecordsSink>();
  private readonly sinkIds = new WeakMap<object, number>();

  /** The number of `log`'s sink (made with `sink` the first time it is asked for). */
  recordSink(log: object, sink: RecordsSink): number {
    let id = this.sinkIds.get(log);
    if (id === undefined) {
      id = this.sinks.size + 1;
      this.sinkIds.set(log, id);
      this.sinks.set(id, sink);
    }
    return id;
  }

  private dispatch(event: AddonEvent): void {
    if (event.type === 'records') {
      // Only sessions given record parts make records, and those name a sink (a bug else).
      const sink = this.sinks.get(event.id);
      if (sink === undefined) throw new Error(`the native relay made ${event.count} statement records for audit log ${event.id}, which it does not know`);
      sink(event.data, event.count);
      return;
    }
    const handler = this.handlers.get(event.id);
    if (event.type === 'closed') this.handlers.delete(event.id);
    handler?.(event);
  }

  /** Takes over an accepted socket (its descriptor is duplicated); its events go to `handler`. */
  adopt(fd: number, prefix: Buffer, tls: 'starttls' | 'direct' | 'none', handler: (event: AddonEvent) => void): number {
    const id = this.addon.adopt(fd, prefix, tls);
    this.handlers.set(id, handler);
    this.adopted++;
    return id;
  }

  /** Connections taken over so far. */
  adopted = 0;

  /** From now on the connection's events go to `handler` (its relayed session). */
  route(id: number, handler: (event: AddonEvent) => void): void {
    if (this.handlers.has(id)) this.handlers.set(id, handler);
  }

  /** The addon's id of the certificate (loaded once per certificate object). Throws on bad PEM. */
  certificateId(cert: ActiveCertificate): number {
    const known = this.certIds.get(cert);
    if (known !== undefined) return known;
    const id = this.nextCertId++;
    this.addon.setCertificate(id, Buffer.from(cert.pem), Buffer.from(cert.keyPem));
    this.certIds.set(cert, id);
    const previous = this.latest;
    this.latest = { cert, id };
    if (previous) {
      // Rotated or reissued: the old one goes once the handshakes answered with it are done.
      this.certIds.delete(previous.cert);
      setTimeout(() => this.addon.dropCertificate(previous.id), DROP_AFTER_MS).unref();
    }
    return id;
  }

  /** The quiet set of an audit configuration (one per configuration object: its classes and
   * filters decide which statements are quiet, so a changed configuration starts empty). */
  quietSet(config: object): number {
    const known = this.quietSets.get(config);
    if (known !== undefined) return known;
    const set = this.addon.quietSet();
    this.quietSets.set(config, set);
    this.quietDrops.register(config, set);
    return set;
  }

  /** A quiet set of one session's own (the SQL watch's verdicts are per role and application). */
  sessionQuietSet(): { readonly set: number; drop(): void } {
    const set = this.addon.quietSet();
    return { set, drop: () => this.dropQuietSet(set) };
  }

  /** The summaries of a quiet set's shapes, by number (the list grows as shapes are added). */
  summariesOf(set: number): Summaries {
    let list = this.summaries.get(set);
    if (list === undefined) {
      list = [];
      this.summaries.set(set, list);
    }
    return list;
  }

  /** Adds a shape key to a quiet set: quiet, or summarized with `summary` (numbered here; past
   * the bound its statements stay observed), with its record parts if given. */
  quiet(set: number, key: Buffer, summary?: QuerySummary, parts?: Buffer): void {
    if (summary === undefined) return this.addon.quiet(set, key);
    const list = this.summariesOf(set);
    if (list.length >= MAX_SUMMARIES) return;
    list.push(summary);
    this.addon.quiet(set, key, list.length, parts);
  }

  private dropQuietSet(set: number): void {
    this.summaries.delete(set);
    this.addon.dropQuietSet(set);
  }
}

let loaded: { host: NativeRelayHost } | { host: null; reason: string } | undefined;

/** The addon, started once per process (`threads` 0: one per core), or why it is not there. */
export function nativeRelayHost(threads = 0): { host: NativeRelayHost } | { host: null; reason: string } {
  if (loaded) return loaded;
  const l = loadRelayAddon();
  if (l.addon === null) loaded = { host: null, reason: l.reason };
  else {
    try {
      loaded = { host: new NativeRelayHost(l.addon, threads) };
    } catch (err) {
      loaded = { host: null, reason: `the relay addon did not start: ${(err as Error).message}` };
    }
  }
  return loaded;
}

/**
 * Relay threads for one of `processes` gateway processes of this host: `wanted` (`--relay-threads`)
 * if given, else the cores shared out. Fewer threads than cores cost less CPU per transaction
 * (each wakes for more work, and wakes the others less to steal it) but carry less: measured on
 * 2 cores next to the servers (bench:gateway, select-only, 16 clients, alternating runs), one
 * thread 19.4–21.5 µs of gateway CPU per transaction and 0.93–1.00 of PgBouncer's throughput,
 * two threads 21.7–22.8 µs and 1.02–1.05.
 */
export function relayThreads(processes: number, wanted?: number): number {
  if (wanted !== undefined) return Math.max(1, Math.floor(wanted));
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, processes)));
}

/** The relay a gateway process runs: `wanted` (the option or PGWARDEN_RELAY), else native when
 * the addon loads. Native wanted and not loadable throws; the fallback is logged once (one line
 * naming the reason). */
export function chooseRelay(
  wanted: RelayMode | undefined,
  threads: number,
  log: { warn(obj: object, msg: string): void },
): { mode: RelayMode; host: NativeRelayHost | null } {
  const env = process.env.PGWARDEN_RELAY;
  if (wanted === undefined && env !== undefined && env !== '') {
    if (env !== 'js' && env !== 'native') throw new Error(`PGWARDEN_RELAY must be js or native, got '${env}'.`);
    wanted = env;
  }
  if (wanted === 'js') return { mode: 'js', host: null };
  const n = nativeRelayHost(threads);
  if (n.host) return { mode: 'native', host: n.host };
  if (wanted === 'native') throw new Error(`--relay native: the native relay addon is not available (${n.reason}).`);
  log.warn({ reason: n.reason }, `native relay not available, the JavaScript relay is used: ${n.reason}`);
  return { mode: 'js', host: null };
}

interface StreamHandle {
  fd?: number;
  reading?: boolean;
  readStop?: () => number;
}

type Internals = { _read?: (n: number) => void; _readableState: { reading: boolean } };

/**
 * Stops Node reading `socket` until resumeReading(): the stream paused, its handle's reads
 * stopped (`reading` false) and its `_read` a no-op meanwhile (so nothing Node scheduled starts
 * them again). Returns the descriptor and every byte Node had read and not delivered yet.
 */
export function stopReading(socket: net.Socket): { fd: number; rest: Buffer } {
  const handle = (socket as unknown as { _handle: StreamHandle | null })._handle;
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0) throw new Error('socket has no descriptor to hand to the native relay');
  socket.pause();
  handle.reading = false;
  handle.readStop?.();
  (socket as unknown as Internals)._read = () => undefined;
  const chunks: Buffer[] = [];
  for (let c = socket.read() as Buffer | null; c !== null; c = socket.read() as Buffer | null) chunks.push(c);
  return { fd: handle.fd, rest: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
}

/** Node reads `socket` again from its next resume() (a pooled connection the addon gave back). */
export function resumeReading(socket: net.Socket): void {
  const s = socket as unknown as Internals;
  delete s._read; // the prototype's: it starts the handle reading
  s._readableState.reading = false;
}
