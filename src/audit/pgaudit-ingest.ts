// Reads the managed servers' pgAudit lines (jsonlog files in each server's log directory) and
// publishes them as `statement.pgaudit` events joined to the gateway session they belong to
// (by server and backend process id). Read offsets are kept in a file, so lines written while
// the platform was down are read when it is back.
// The reading and parsing run in a worker thread (pgaudit-worker.ts); this thread only looks the
// pids up in the gateway's session index and publishes. stop() reads the last lines itself.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { collectLines, finishLines, type JoinedSession, type ServerLogs } from './pgaudit-scan.js';
import type { FromReader, ToReader } from './pgaudit-worker.js';
import type { EventBus } from '../events/bus.js';
import type { AnyEvent } from '../events/types.js';

/** The gateway's sessions by (server, backend process id), ended ones kept a while; the gateway's
 * SessionIndex (gateway/session-index.ts) is one. Declared here because gateway/ sits above audit/.
 * `find` decides whether a pid is a gateway session's (which lines are published); `findAt` then
 * names the one that held it when the line was written. */
export interface SessionLookup {
  find(server: string, pid: number): (JoinedSession & { readonly server: string; readonly backendPid: number }) | null;
  /** The session that held the backend at `time` (ms): with pooling one pid serves many client
   * sessions over time, so each line is joined again by its own time before it is published. */
  findAt?(server: string, pid: number, time: number): (JoinedSession & { readonly server: string }) | null;
  /** Every line logged before `time` (ms) has been read and joined: what held a backend before
   * then is no longer looked up (the server's logging delay aside). */
  settled?(time: number): void;
}

export interface IngestOptions {
  readonly stateFile: string;
  readonly servers: () => Iterable<{ readonly id: number; readonly name: string }>;
  readonly logDir: (serverId: number) => string;
  readonly sessions: SessionLookup;
  readonly bus: EventBus;
  readonly intervalMs?: number;
  /** The servers' pgAudit logs only nested statements in gateway sessions (ext/pgwarden_audit). */
  readonly nestedOnly?: boolean;
  /** Lines logged less than this long ago (ms) are read by a later scan: the index of sessions on
   * other gateway processes hears of their lends a moment late (IPC), and a line read before its
   * lend is known would be joined to the session that held the backend before. 0: none. */
  readonly holdMs?: number;
}

const READER_URL = new URL('./pgaudit-worker.js', import.meta.url);

export class PgAuditIngest {
  private offsets: Record<string, number> = {};
  private timer: NodeJS.Timeout | null = null;
  private worker: Worker | null = null;
  /** The scan in flight (0: none). */
  private scanning = 0;
  /** What the scan in flight reads to: lines logged before this (ms) are all in it, if it reads
   * every file to its end. */
  private scanMark = 0;
  private nextScan = 1;
  private saving = false;
  private saveAgain = false;
  private stopped = false;

  constructor(private readonly o: IngestOptions) {
    try {
      this.offsets = JSON.parse(readFileSync(o.stateFile, 'utf8')) as Record<string, number>;
    } catch {
      this.offsets = {};
    }
  }

  start(): void {
    try {
      const worker = new Worker(READER_URL, { name: 'pgwarden pgaudit reader' });
      worker.unref();
      worker.on('message', (m: FromReader) => this.fromReader(m));
      worker.on('error', () => this.readerLost());
      worker.on('exit', () => this.readerLost());
      this.worker = worker;
    } catch {
      this.worker = null; // read in this thread
    }
    this.timer = setInterval(() => this.scan(), this.o.intervalMs ?? 500);
    this.timer.unref();
  }

  /** Reads what is new in every server's log in this thread (up to `notAfter`, ms); returns how many
   * audit lines it published. */
  tick(notAfter = Number.POSITIVE_INFINITY): number {
    const mark = Math.min(Date.now(), notAfter);
    const collected = collectLines(this.serverLogs(), this.offsets, undefined, notAfter);
    const events = finishLines(collected.lines, this.lookup(collected.keys));
    const n = this.commit(events, collected.offsets, true);
    if (collected.complete) this.o.sessions.settled?.(mark);
    return n;
  }

  stop(): void {
    this.stopped = true; // an asynchronous save in flight must not replace the last one
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.scanning = 0; // a scan in flight is dropped: its lines are read again just below
    const worker = this.worker;
    this.worker = null;
    void worker?.terminate();
    this.tick();
  }

  private scan(): void {
    if (this.scanning !== 0) return;
    const hold = this.o.holdMs ?? 0;
    const notAfter = hold > 0 ? Date.now() - hold : Number.POSITIVE_INFINITY;
    if (this.worker === null) {
      this.tick(notAfter);
      return;
    }
    this.scanning = this.nextScan++;
    this.scanMark = Math.min(Date.now(), notAfter);
    this.worker.ref(); // until the scan is answered
    this.post({ t: 'scan', id: this.scanning, servers: this.serverLogs(), offsets: { ...this.offsets }, notAfter });
  }

  private fromReader(m: FromReader): void {
    if (m.id !== this.scanning) return; // dropped
    switch (m.t) {
      case 'keys':
        this.post({ t: 'sessions', id: m.id, sessions: [...this.lookup(m.keys)] });
        return;
      case 'events':
        this.done();
        this.commit(m.events, m.offsets, false);
        if (m.complete) this.o.sessions.settled?.(this.scanMark);
        return;
      case 'failed':
        this.done();
        return;
    }
  }

  private done(): void {
    this.scanning = 0;
    this.worker?.unref();
  }

  private readerLost(): void {
    if (this.worker === null) return;
    this.worker = null;
    this.scanning = 0; // scans go on in this thread
  }

  private post(m: ToReader): void {
    this.worker?.postMessage(m);
  }

  private serverLogs(): ServerLogs[] {
    return [...this.o.servers()].map((s) => ({ name: s.name, dir: this.o.logDir(s.id), nestedOnly: this.o.nestedOnly === true }));
  }

  private lookup(keys: readonly string[]): Map<string, JoinedSession> {
    const found = new Map<string, JoinedSession>();
    for (const key of keys) {
      const cut = key.lastIndexOf('\0');
      const s = this.o.sessions.find(key.slice(0, cut), Number(key.slice(cut + 1)));
      // Keyed by the line's pid, not the session's: a pooled session holds other backends too.
      if (s) found.set(key, { connId: s.connId, applicationName: s.applicationName });
    }
    return found;
  }

  private commit(events: readonly AnyEvent[], offsets: Record<string, number>, sync: boolean): number {
    for (const e of events) this.o.bus.publish(this.atItsTime(e));
    if (Object.keys(offsets).length === 0) return events.length;
    Object.assign(this.offsets, offsets);
    if (sync) {
      const tmp = `${this.o.stateFile}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.offsets), { mode: 0o600 });
      renameSync(tmp, this.o.stateFile);
    } else void this.save();
    return events.length;
  }

  /** A joined line names the session that held its backend when the server wrote it. */
  private atItsTime(e: AnyEvent): AnyEvent {
    const findAt = this.o.sessions.findAt;
    if (e.type !== 'statement.pgaudit' || e.sessionId === null || findAt === undefined) return e;
    const at = Date.parse(e.time);
    const s = Number.isNaN(at) ? null : findAt.call(this.o.sessions, e.server, e.backendPid, at);
    if (!s || s.connId === e.sessionId) return e;
    return { ...e, sessionId: s.connId, applicationName: s.applicationName ?? e.applicationName };
  }

  /** The offsets written off the event loop, one write at a time (the newest wins). */
  private async save(): Promise<void> {
    if (this.saving) {
      this.saveAgain = true;
      return;
    }
    this.saving = true;
    try {
      do {
        this.saveAgain = false;
        const tmp = `${this.o.stateFile}.tmp-async`;
        await writeFile(tmp, JSON.stringify(this.offsets), { mode: 0o600 });
        if (this.stopped) break;
        await rename(tmp, this.o.stateFile);
      } while (this.saveAgain);
    } catch {
      // Next time: offsets only decide what is read again after a restart.
    } finally {
      this.saving = false;
    }
  }
}
