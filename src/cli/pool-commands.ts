// pgwarden server update … --pool-mode/--pool-size (the options) and pgwarden server pool show.
import { Command, InvalidArgumentError, Option } from 'commander';
import { contextOf } from './context.js';
import { printJson, printRecord, printTable } from './output.js';

export const POOL_MODES = ['none', 'session', 'transaction'] as const;
const POOL_SIZE_MAX = 10000;

/** --pool-size: a whole number from 1 to 10000, refused here with the reason before any call. */
export function parsePoolSize(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > POOL_SIZE_MAX) {
    throw new InvalidArgumentError(`The pool size must be a whole number from 1 to ${POOL_SIZE_MAX} (got '${value}').`);
  }
  return n;
}

export const poolModeOption = () =>
  new Option('--pool-mode <mode>', 'connection pooling: none, session (a warm connection per client session) or transaction').choices([...POOL_MODES]);
export const poolSizeOption = () => new Option('--pool-size <n>', 'server connections per (role, database) when pooling, 1-10000').argParser(parsePoolSize);

interface PoolStatsRow {
  user: string;
  database: string;
  mode: string;
  clients: number;
  waiting: number;
  active: number;
  idle: number;
  opening: number;
  poolSize: number;
  waits: number;
  waitMs: number;
  opened: number;
  reused: number;
}

interface ServerPool {
  server: string;
  poolMode: string;
  poolSize: number;
  pools: PoolStatsRow[];
}

const COLUMNS = ['user', 'database', 'mode', 'clients', 'waiting', 'active', 'idle', 'opening', 'pool size', 'waits', 'wait ms', 'opened', 'reused'];

/** The table's rows: the API's fields under the column names people read. */
export function poolTableRows(pools: readonly PoolStatsRow[]): Record<string, unknown>[] {
  return pools.map((p) => ({
    user: p.user,
    database: p.database,
    mode: p.mode,
    clients: p.clients,
    waiting: p.waiting,
    active: p.active,
    idle: p.idle,
    opening: p.opening,
    'pool size': p.poolSize,
    waits: p.waits,
    'wait ms': Math.round(p.waitMs),
    opened: p.opened,
    reused: p.reused,
  }));
}

/** Adds `pool show` to `pgwarden server`. */
export function addServerPoolCommands(server: Command): void {
  const pool = new Command('pool').description("a server's connection pools in the gateway");
  pool
    .command('show')
    .description('the pools of a server: clients, waiting clients, server connections, waits')
    .argument('<name>')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const r = await ctx.call<ServerPool>('GET', `/servers/${encodeURIComponent(name)}/pool`);
      if (ctx.output === 'json') return printJson(r);
      printRecord({ server: r.server, poolMode: r.poolMode, poolSize: r.poolSize });
      process.stdout.write('\n');
      printTable(poolTableRows(r.pools), COLUMNS);
    });
  server.addCommand(pool);
}
