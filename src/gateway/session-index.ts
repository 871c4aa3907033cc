// Sessions by (server, backend process id): how a line the server logged (pgAudit) is joined to
// the gateway session it belongs to. With pooling one backend serves many client sessions over
// time, so the index keeps when each session held the backend (lent → returned) and answers
// "which session held pid P of server S at time T". An ended hold stays findable until the
// pgAudit ingest has read every line logged while it was held (settled(), plus a margin for the
// server's logging collector), and at most two minutes (an ingest that cannot read).
//
// With transaction pooling that is a hold per transaction: they are kept per backend as columns
// (a backend's holds follow one another, so the oldest are always first) and forgotten in the
// order they ended.

const KEEP_ENDED_MS = 120_000;
/** How long before the ingest's mark an ended hold is still kept: a line is written to the log a
 * moment after the server stamped its time (longer while its logging collector is behind). */
export const SETTLE_MARGIN_MS = 10_000;

/** What the index keeps of a session (context.ts ActiveSession is one): not imported from
 * context.ts, which holds the index, so the two files do not import each other. */
export interface IndexedSession {
  readonly server: string;
  readonly backendPid: number;
  readonly connId: string;
  readonly applicationName: string | undefined;
}

/** One backend's holds, oldest first from `head`; `to` is NaN while held. */
class Holds<S> {
  constructor(
    readonly server: string,
    readonly pid: number,
  ) {}

  readonly sessions: (S | undefined)[] = [];
  readonly from: number[] = [];
  readonly to: number[] = [];
  readonly seq: number[] = [];
  head = 0;

  get size(): number {
    return this.from.length - this.head;
  }

  /** Forgets the holds up to hold number `seq` that have ended. */
  forgetThrough(seq: number): void {
    while (this.head < this.from.length && this.seq[this.head]! <= seq && !Number.isNaN(this.to[this.head]!)) {
      this.sessions[this.head] = undefined;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.from.length) {
      for (const column of [this.sessions, this.from, this.to, this.seq]) column.splice(0, this.head);
      this.head = 0;
    }
  }
}

export class SessionIndex<S extends IndexedSession = IndexedSession> {
  /** By server, then backend pid (no key string made per lend and return). */
  private readonly holds = new Map<string, Map<number, Holds<S>>>();
  /** Ended holds in the order they ended (backend, hold number, end time), from `endedHead`. */
  private readonly ended = { lists: [] as Holds<S>[], seq: [] as number[], to: [] as number[] };
  private endedHead = 0;
  private nextSeq = 1;
  /** Every pgAudit line logged before this (ms) has been joined. */
  private settledAt = Number.NEGATIVE_INFINITY;

  private list(server: string, pid: number): Holds<S> | undefined {
    return this.holds.get(server)?.get(pid);
  }

  /** A session holds its own backend from now (no pooling: for its whole life). */
  opened(s: S): void {
    this.lent(s, s.backendPid);
  }

  closed(s: S): void {
    this.returned(s, s.backendPid);
  }

  /** Session `s` holds backend `pid` of its server from `at`. */
  lent(s: S, pid: number, at = Date.now()): void {
    let list = this.list(s.server, pid);
    if (!list) {
      list = new Holds<S>(s.server, pid);
      const byPid = this.holds.get(s.server);
      if (byPid) byPid.set(pid, list);
      else this.holds.set(s.server, new Map([[pid, list]]));
    }
    list.sessions.push(s);
    list.from.push(at);
    list.to.push(Number.NaN);
    list.seq.push(this.nextSeq++);
  }

  /** Session `s` gave backend `pid` back at `at`. */
  returned(s: S, pid: number, at = Date.now()): void {
    const list = this.list(s.server, pid);
    if (list) {
      // Its hold is the backend's last one (holds of one backend follow one another).
      for (let i = list.from.length - 1; i >= list.head; i--) {
        if (list.sessions[i] !== s) continue;
        if (Number.isNaN(list.to[i]!)) {
          list.to[i] = at;
          this.ended.lists.push(list);
          this.ended.seq.push(list.seq[i]!);
          this.ended.to.push(at);
        }
        break;
      }
    }
    this.forgetOld(at);
  }

  /** The pgAudit ingest has joined every line logged before `time` (ms). */
  settled(time: number): void {
    if (time > this.settledAt) this.settledAt = time;
    this.forgetOld(Date.now());
  }

  /** The session that holds (or last held) the backend. */
  find(server: string, pid: number): S | null {
    const list = this.list(server, pid);
    return list?.size ? list.sessions[list.from.length - 1]! : null;
  }

  /** The session that held the backend at `time`; else the last one that took it before then;
   * else the latest one (a clock a little ahead of the server's log). */
  findAt(server: string, pid: number, time: number): S | null {
    const list = this.list(server, pid);
    if (!list?.size) return null;
    for (let i = list.from.length - 1; i >= list.head; i--) {
      if (list.from[i]! <= time) return list.sessions[i]!;
    }
    return list.sessions[list.from.length - 1]!;
  }

  /** How many holds are kept (for tests). */
  get kept(): number {
    let n = 0;
    for (const byPid of this.holds.values()) for (const list of byPid.values()) n += list.size;
    return n;
  }

  private forgetOld(now: number): void {
    const cutoff = Math.max(now - KEEP_ENDED_MS, this.settledAt - SETTLE_MARGIN_MS);
    const { lists, seq, to } = this.ended;
    let head = this.endedHead;
    while (head < lists.length && to[head]! <= cutoff) {
      const list = lists[head]!;
      list.forgetThrough(seq[head]!);
      if (list.size === 0) this.forget(list);
      head++;
    }
    if (head > 1024 && head * 2 > lists.length) {
      for (const column of [lists, seq, to]) column.splice(0, head);
      head = 0;
    }
    this.endedHead = head;
  }

  private forget(list: Holds<S>): void {
    const byPid = this.holds.get(list.server);
    if (byPid?.get(list.pid) !== list) return; // forgotten before
    byPid.delete(list.pid);
    if (byPid.size === 0) this.holds.delete(list.server);
  }
}
