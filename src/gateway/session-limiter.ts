// Connections per server: a count each session holds from routing to its end. A pooled server's
// clients do not each hold a backend (the pool size caps those), so they have a limit of their own.
export class SessionLimiter {
  private readonly counts = new Map<number, number>();
  private readonly pooledCounts = new Map<number, number>();

  constructor(
    private readonly maxPerServer: number,
    private readonly maxPooledPerServer = maxPerServer,
  ) {}

  /** A release function, or null when the server is at its limit. */
  acquire(serverId: number, pooled = false): (() => void) | null {
    const counts = pooled ? this.pooledCounts : this.counts;
    const n = counts.get(serverId) ?? 0;
    if (n >= (pooled ? this.maxPooledPerServer : this.maxPerServer)) return null;
    counts.set(serverId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (counts.get(serverId) ?? 1) - 1;
      if (left <= 0) counts.delete(serverId);
      else counts.set(serverId, left);
    };
  }
}
