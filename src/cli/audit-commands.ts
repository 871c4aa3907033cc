// pgwarden server audit update|show
import { Command, Option } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);

export function addServerAuditCommands(server: Command): void {
  const audit = new Command('audit').description("a server's statement audit settings");
  audit.command('update')
    .requiredOption('--server <server>')
    .option('--classes <list>', 'READ,WRITE,FUNCTION,ROLE,DDL,MISC,MISC_SET (comma separated)')
    .addOption(new Option('--log-parameters <value>', 'record bind parameters').choices(['Enabled', 'Disabled']))
    .option('--redact <list>', 'column names or patterns whose values are redacted (comma separated)')
    .option('--retention-days <n>', 'days audit records are kept')
    .action(async (o: Record<string, string | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const body = {
        ...(o.classes !== undefined ? { classes: list(o.classes).map((x) => x.toUpperCase()) } : {}),
        ...(o.logParameters ? { logParameters: o.logParameters } : {}),
        ...(o.redact !== undefined ? { redact: list(o.redact) } : {}),
        ...(o.retentionDays !== undefined ? { retentionDays: Number(o.retentionDays) } : {}),
      };
      if (Object.keys(body).length === 0) throw new Error('Nothing to update: give --classes, --log-parameters, --redact or --retention-days.');
      show(ctx.output, await ctx.call<Record<string, unknown>>('PATCH', `/servers/${encodeURIComponent(String(o.server))}/auditSettings`, body));
    });
  audit.command('show').requiredOption('--server <server>').action(async (o: { server: string }, c: Command) => {
    const ctx = contextOf(c);
    show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${encodeURIComponent(o.server)}/auditSettings`));
  });
  server.addCommand(audit);
}
