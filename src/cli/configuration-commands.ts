// pgwarden server configuration list|show|set and pgwarden server extension create
import { Command } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

type Row = Record<string, unknown>;
const COLUMNS = ['name', 'value', 'defaultValue', 'dataType', 'allowedValues', 'isDynamic', 'pendingRestart'];
const path = (server: string, name?: string) =>
  `/servers/${encodeURIComponent(server)}/configurations${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

export function addServerConfigurationCommands(server: Command): void {
  const conf = new Command('configuration').description("a server's parameters (from the allow-list)");
  conf
    .command('list')
    .description('list the parameters that can be set')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      const { value } = await ctx.call<{ value: Row[] }>('GET', path(o.server));
      show(ctx.output, value, COLUMNS);
    });
  conf
    .command('show')
    .description('show one parameter')
    .requiredOption('--server <server>')
    .requiredOption('--name <parameter>')
    .action(async (o: { server: string; name: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Row>('GET', path(o.server, o.name)));
    });
  conf
    .command('set')
    .description('set a parameter (dynamic ones apply at once; others with --restart or at the next start)')
    .requiredOption('--server <server>')
    .requiredOption('--name <parameter>')
    .requiredOption('--value <value>')
    .option('--restart', 'restart the server if the parameter needs it (open sessions end)')
    .action(async (o: { server: string; name: string; value: string; restart?: boolean }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Row>('PUT', path(o.server, o.name), { value: o.value, ...(o.restart ? { restart: true } : {}) }));
    });
  server.addCommand(conf);

  const ext = new Command('extension').description("extensions the platform creates on the administrator's behalf");
  ext
    .command('create')
    .description("create an extension on the server's pgwarden.extensions list as the platform's superuser")
    .requiredOption('--server <server>')
    .requiredOption('--name <extension>')
    .option('--database <database>', 'database (default postgres)')
    .action(async (o: { server: string; name: string; database?: string }, c: Command) => {
      const ctx = contextOf(c);
      show(
        ctx.output,
        await ctx.call<Row>('POST', `/servers/${encodeURIComponent(o.server)}/extensions`, { name: o.name, ...(o.database ? { database: o.database } : {}) }),
      );
    });
  server.addCommand(ext);
}
