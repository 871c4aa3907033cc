// How a per-server bound is split between the gateway's processes (`up --gateway-workers N`):
// each process decides alone, without asking the others, so each gets a part and the parts add
// up to the bound the owner set (at least one each, so no process refuses everyone).
import type { GatewayLimits } from '../../gateway/context.js';
import type { PoolStats } from '../../gateway/pool/types.js';

/** Process `index`'s part of `total` among `count` processes. */
export function shareOf(total: number, index: number, count: number): number {
  if (count <= 1) return total;
  const part = Math.floor(total / count) + (index < total % count ? 1 : 0);
  return Math.max(1, part);
}

/** The limits one process enforces: per-server session caps and the pre-auth caps are split;
 * timeouts and sizes are the same everywhere. */
export function shareLimits(limits: GatewayLimits, index: number, count: number): GatewayLimits {
  return {
    ...limits,
    maxConnectionsPerServer: shareOf(limits.maxConnectionsPerServer, index, count),
    maxPooledClientsPerServer: shareOf(limits.maxPooledClientsPerServer, index, count),
    maxPreauthConnections: shareOf(limits.maxPreauthConnections, index, count),
  };
}

/** The pools of one server as the gateway's processes report them, one row per (role,
 * database): the counts summed, the size as the owner set it. */
export function mergePoolStats(rows: readonly PoolStats[]): PoolStats[] {
  const byPool = new Map<string, PoolStats>();
  for (const r of rows) {
    const key = `${r.server}\u0000${r.user}\u0000${r.database}`;
    const m = byPool.get(key);
    byPool.set(
      key,
      m
        ? {
            ...m,
            clients: m.clients + r.clients,
            waiting: m.waiting + r.waiting,
            active: m.active + r.active,
            idle: m.idle + r.idle,
            opening: m.opening + r.opening,
            waits: m.waits + r.waits,
            waitMs: m.waitMs + r.waitMs,
            opened: m.opened + r.opened,
            reused: m.reused + r.reused,
          }
        : r,
    );
  }
  return [...byPool.values()];
}
