// Sessions by (server, backend process id): how a line the server logged (pgAudit) is joined to
// the gateway session it belongs to. Ended sessions stay findable for a while, since the server's
// log is read a moment after it is written.
import type { ActiveSession } from './context.js';

const KEEP_ENDED_MS = 120_000;

export class SessionIndex {
  private readonly live = new Map<string, ActiveSession>();
  private readonly ended = new Map<string, { session: ActiveSession; until: number }>();

  private key(server: string, pid: number): string {
    return `${server}\0${pid}`;
  }

  opened(s: ActiveSession): void {
    this.live.set(this.key(s.server, s.backendPid), s);
  }

  closed(s: ActiveSession): void {
    const k = this.key(s.server, s.backendPid);
    if (this.live.get(k) === s) this.live.delete(k);
    const now = Date.now();
    this.ended.set(k, { session: s, until: now + KEEP_ENDED_MS });
    for (const [key, e] of this.ended) {
      if (e.until > now) break; // insertion order: the rest are newer
      this.ended.delete(key);
    }
  }

  find(server: string, pid: number): ActiveSession | null {
    const k = this.key(server, pid);
    return this.live.get(k) ?? this.ended.get(k)?.session ?? null;
  }
}
