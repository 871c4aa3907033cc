// pgwarden server identity-admin set|show|delete, pgwarden server identity-principal create|list|delete
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

const enc = encodeURIComponent;
const typeOption = (def?: string) => {
  const o = new Option('--type <type>', 'user, group or servicePrincipal').choices(['user', 'group', 'servicePrincipal']);
  return def ? o.default(def) : o.makeOptionMandatory();
};

function identityAdminCommand(): Command {
  const cmd = new Command('identity-admin').description("a server's token-login (OpenID Connect) administrator");
  cmd
    .command('set')
    .description('set the identity administrator (creates its database role, an administrator like the server admin)')
    .requiredOption('--server <server>')
    .requiredOption('--issuer <url>', 'the OpenID Connect issuer (https)')
    .requiredOption('--audience <aud>', 'the audience tokens must carry')
    .requiredOption('--login <role>', 'the database role of the administrator')
    .requiredOption('--object-id <oid>', "the administrator's immutable object id")
    .addOption(typeOption('user'))
    .addOption(new Option('--object-id-claim <claim>', 'claim holding object ids').choices(['oid', 'sub']))
    .option('--ca-file <file>', "PEM CA bundle for a private issuer's TLS certificate")
    .action(async (o: Record<string, string | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const body = {
        issuer: o.issuer,
        audience: o.audience,
        login: o.login,
        objectId: o.objectId,
        type: o.type,
        ...(o.objectIdClaim ? { objectIdClaim: o.objectIdClaim } : {}),
        ...(o.caFile ? { caBundle: readFileSync(o.caFile, 'utf8') } : {}),
      };
      show(ctx.output, await ctx.call<Record<string, unknown>>('PUT', `/servers/${enc(String(o.server))}/administrators/identity`, body));
    });
  cmd
    .command('show')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${enc(o.server)}/administrators/identity`));
    });
  cmd
    .command('delete')
    .description('remove it: every token login on the server stops until one is set again')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', `/servers/${enc(o.server)}/administrators/identity`);
      process.stdout.write(ctx.output === 'json' ? '{}\n' : `Identity administrator of '${o.server}' removed: token logins are off.\n`);
    });
  return cmd;
}

function identityPrincipalCommand(): Command {
  const cmd = new Command('identity-principal').description('database roles bound to identities (token login)');
  cmd
    .command('create')
    .requiredOption('--server <server>')
    .requiredOption('--role <name>', 'database role to create for the identity')
    .requiredOption('--object-id <oid>', 'immutable object id (or group id for --type group)')
    .addOption(typeOption())
    .action(async (o: Record<string, string>, c: Command) => {
      const ctx = contextOf(c);
      show(
        ctx.output,
        await ctx.call<Record<string, unknown>>('POST', `/servers/${enc(o.server!)}/identityPrincipals`, { role: o.role, objectId: o.objectId, type: o.type }),
      );
    });
  cmd
    .command('list')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      const { value } = await ctx.call<{ value: Record<string, unknown>[] }>('GET', `/servers/${enc(o.server)}/identityPrincipals`);
      show(ctx.output, value, ['role', 'type', 'objectId', 'createdAt']);
    });
  cmd
    .command('delete')
    .requiredOption('--server <server>')
    .requiredOption('--role <name>')
    .action(async (o: { server: string; role: string }, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', `/servers/${enc(o.server)}/identityPrincipals/${enc(o.role)}`);
      process.stdout.write(ctx.output === 'json' ? '{}\n' : `Principal '${o.role}' removed.\n`);
    });
  return cmd;
}

export function addIdentityCommands(server: Command): void {
  server.addCommand(identityAdminCommand());
  server.addCommand(identityPrincipalCommand());
}
