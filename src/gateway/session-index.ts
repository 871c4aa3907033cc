// Sessions by (server, backend process id): how a line the server logged (pgAudit) is joined to
// the gateway session it belongs to. With pooling one backend serves many client sessions over
// time, so the index keeps when each session held the backend (lent → returned) and answers
// "which session held pid P of server S at time T". Ended holds stay findable for a while, since
// the server's log is read a moment after it is written.

const KEEP_ENDED_MS = 120_000;

/** What the index keeps of a session (context.ts ActiveSession is one): not imported from
 * context.ts, which holds the index, so the two files do not import each other. */
export interface IndexedSession {
  readonly server: string;
  readonly backendPid: number;
  readonly connId: string;
  readonly applicationName: string | undefined;
}

interface Hold<S> {
  readonly session: S;
  readonly from: number;
  to: number | null;
}

export class SessionIndex<S extends IndexedSession = IndexedSession> {
  /** Holds of each (server, pid), oldest first. */
  private readonly holds = new Map<string, Hold<S>[]>();
  /** Ended holds in the order they ended, to forget them after KEEP_ENDED_MS. */
  private readonly ended: { key: string; hold: Hold<S> }[] = [];
  private endedHead = 0;
  /** Each session's current hold (a session holds one backend at a time): giving it back costs
   * no search through a backend's history, which grows to thousands under pooling. */
  private readonly current = new Map<S, { key: string; hold: Hold<S> }>();

  private key(server: string, pid: number): string {
    return `${server}\0${pid}`;
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
    const k = this.key(s.server, pid);
    const list = this.holds.get(k);
    const hold: Hold<S> = { session: s, from: at, to: null };
    if (list) list.push(hold);
    else this.holds.set(k, [hold]);
    this.current.set(s, { key: k, hold });
  }

  /** Session `s` gave backend `pid` back at `at`. */
  returned(s: S, pid: number, at = Date.now()): void {
    const k = this.key(s.server, pid);
    const held = this.current.get(s);
    if (held?.key === k) {
      this.current.delete(s);
      held.hold.to = at;
      this.ended.push(held);
    }
    this.forgetOld(at);
  }

  /** The session that holds (or last held) the backend. */
  find(server: string, pid: number): S | null {
    const list = this.holds.get(this.key(server, pid));
    return list?.[list.length - 1]?.session ?? null;
  }

  /** The session that held the backend at `time`; else the last one that took it before then;
   * else the latest one (a clock a little ahead of the server's log). */
  findAt(server: string, pid: number, time: number): S | null {
    const list = this.holds.get(this.key(server, pid));
    if (!list?.length) return null;
    for (let i = list.length - 1; i >= 0; i--) {
      const h = list[i]!;
      if (h.from <= time) return h.session;
    }
    return list[list.length - 1]!.session;
  }

  private forgetOld(now: number): void {
    while (this.endedHead < this.ended.length) {
      const { key, hold } = this.ended[this.endedHead]!;
      if (hold.to! + KEEP_ENDED_MS > now) break;
      this.endedHead++;
      const list = this.holds.get(key);
      const i = list?.indexOf(hold) ?? -1;
      if (list && i >= 0) {
        list.splice(i, 1);
        if (!list.length) this.holds.delete(key);
      }
    }
    if (this.endedHead > 1024 && this.endedHead * 2 > this.ended.length) {
      this.ended.splice(0, this.endedHead);
      this.endedHead = 0;
    }
  }
}
