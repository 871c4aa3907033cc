// Connections per server: a count each session holds from routing to its end.
export class SessionLimiter {
  private readonly counts = new Map<number, number>();

  constructor(private readonly maxPerServer: number) {}

  /** A release function, or null when the server is at its limit. */
  acquire(serverId: number): (() => void) | null {
    const n = this.counts.get(serverId) ?? 0;
    if (n >= this.maxPerServer) return null;
    this.counts.set(serverId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(serverId) ?? 1) - 1;
      if (left <= 0) this.counts.delete(serverId);
      else this.counts.set(serverId, left);
    };
  }
}
