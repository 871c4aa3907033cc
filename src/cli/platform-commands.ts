// pgwarden token create|list|revoke, pgwarden ca export
import { Command, Option } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

export function tokenCommand(): Command {
  const token = new Command('token').description('API tokens');
  token
    .command('create')
    .description('create an API token (printed once)')
    .addOption(new Option('--role <role>', 'API role').choices(['Owner', 'Contributor', 'Reader', 'SecurityAdmin']).makeOptionMandatory())
    .option('--name <name>', 'a label for the token')
    .action(async (o: { role: string; name?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const t = await ctx.call<Record<string, unknown>>('POST', '/tokens', { role: o.role, name: o.name });
      if (ctx.output === 'json') show('json', t);
      else process.stdout.write(`${String(t.token)}\n`);
    });
  token
    .command('list')
    .description('list API tokens (never their secrets)')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { value } = await ctx.call<{ value: Record<string, unknown>[] }>('GET', '/tokens');
      show(ctx.output, value, ['id', 'name', 'role', 'createdAt']);
    });
  token
    .command('revoke')
    .description('revoke an API token')
    .argument('<id>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      await ctx.call('DELETE', `/tokens/${encodeURIComponent(id)}`);
      process.stdout.write(ctx.output === 'json' ? '{}\n' : `Token ${id} revoked.\n`);
    });
  return token;
}

export function caCommand(): Command {
  const ca = new Command('ca').description('the platform certificate authority');
  ca.command('export')
    .description('print the platform CA certificate (PEM)')
    .action(async (_o: unknown, cmd: Command) => {
      const pem = await contextOf(cmd).call<string>('GET', '/ca');
      process.stdout.write(pem.endsWith('\n') ? pem : `${pem}\n`);
    });
  return ca;
}
