// pgwarden backup create|list, pgwarden server restore: long operations followed with a
// progress line on stderr until they end.
import { Command } from 'commander';
import { contextOf, type CliContext } from './context.js';
import { show } from './output.js';

interface Operation {
  id: string;
  status: 'Running' | 'Succeeded' | 'Failed';
  progress: { phase: string; done: number; total: number; unit: string } | null;
  result: Record<string, unknown> | null;
  error: string | null;
}

function progressLine(op: Operation): string {
  const p = op.progress;
  if (!p) return 'starting';
  if (p.unit === 'bytes') {
    const mib = (n: number) => (n / 1048576).toFixed(1);
    return p.total > 0
      ? `${p.phase}: ${mib(p.done)} of ~${mib(p.total)} MiB (${Math.min(100, Math.round((100 * p.done) / p.total))}%)`
      : `${p.phase}: ${mib(p.done)} MiB`;
  }
  return `${p.phase}: ${p.done}${p.total ? ` of ${p.total}` : ''} WAL files`;
}

/** Follows an operation to its end, drawing progress on stderr when it is a terminal. */
async function follow(ctx: CliContext, first: Operation): Promise<Operation> {
  let op = first;
  const tty = process.stderr.isTTY;
  let last = '';
  while (op.status === 'Running') {
    await new Promise((r) => setTimeout(r, 500));
    op = await ctx.call<Operation>('GET', `/operations/${op.id}`);
    const line = progressLine(op);
    if (line !== last) {
      process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      last = line;
    }
  }
  if (tty) process.stderr.write('\n');
  if (op.status === 'Failed') throw new Error(op.error ?? 'the operation failed');
  return op;
}

export function backupCommand(): Command {
  const backup = new Command('backup').description('encrypted backups of a server');
  backup
    .command('create')
    .requiredOption('--server <server>')
    .option('--no-wait', 'return the operation at once instead of following it')
    .action(async (o: { server: string; wait: boolean }, c: Command) => {
      const ctx = contextOf(c);
      const op = await ctx.call<Operation>('POST', `/servers/${encodeURIComponent(o.server)}/backups`);
      show(ctx.output, o.wait ? ((await follow(ctx, op)).result ?? {}) : (op as unknown as Record<string, unknown>));
    });
  backup
    .command('list')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      const r = await ctx.call<{ value: Record<string, unknown>[] }>('GET', `/servers/${encodeURIComponent(o.server)}/backups`);
      show(ctx.output, r.value, ['id', 'startTime', 'stopTime', 'sizeBytes', 'storedBytes']);
    });
  return backup;
}

export function addRestoreCommand(server: Command): void {
  server
    .command('restore')
    .description('a new server from the backups of another, at a point in time (default: the latest)')
    .argument('<name>', 'the new server')
    .requiredOption('--source <server>')
    .option('--restore-point-in-time <time>', 'ISO 8601')
    .action(async (name: string, o: { source: string; restorePointInTime?: string }, c: Command) => {
      const ctx = contextOf(c);
      const body = { name, ...(o.restorePointInTime ? { restorePointInTime: new Date(o.restorePointInTime).toISOString() } : {}) };
      const op = await ctx.call<Operation>('POST', `/servers/${encodeURIComponent(o.source)}/restore`, body);
      const done = await follow(ctx, op);
      show(ctx.output, done.result ?? {});
      if (ctx.output !== 'json') process.stdout.write(`Server '${name}' has no firewall rules yet: add one to connect.\n`);
    });
}
