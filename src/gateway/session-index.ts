// Sessions by (server, backend process id): how a line the server logged (pgAudit) is joined to
// the gateway session it belongs to. Ended sessions stay findable for a while, since the server's
// log is read a moment after it is written.

const KEEP_ENDED_MS = 120_000;

/** What the index keeps of a session (context.ts ActiveSession is one): not imported from
 * context.ts, which holds the index, so the two files do not import each other. */
export interface IndexedSession {
  readonly server: string;
  readonly backendPid: number;
  readonly connId: string;
  readonly applicationName: string | undefined;
}

export class SessionIndex<S extends IndexedSession = IndexedSession> {
  private readonly live = new Map<string, S>();
  private readonly ended = new Map<string, { session: S; until: number }>();

  private key(server: string, pid: number): string {
    return `${server}\0${pid}`;
  }

  opened(s: S): void {
    this.live.set(this.key(s.server, s.backendPid), s);
  }

  closed(s: S): void {
    const k = this.key(s.server, s.backendPid);
    if (this.live.get(k) === s) this.live.delete(k);
    const now = Date.now();
    this.ended.set(k, { session: s, until: now + KEEP_ENDED_MS });
    for (const [key, e] of this.ended) {
      if (e.until > now) break; // insertion order: the rest are newer
      this.ended.delete(key);
    }
  }

  find(server: string, pid: number): S | null {
    const k = this.key(server, pid);
    return this.live.get(k) ?? this.ended.get(k)?.session ?? null;
  }
}
