// pgwarden server create|list|show|update|delete|stop|start (and the server's sub-resources)
import { Command, Option } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';
import { promptSecret } from './prompt.js';
import { addServerNetworkCommands } from './network-commands.js';
import { addIdentityCommands } from './identity-commands.js';
import { addServerAuditCommands } from './audit-commands.js';
import { addServerThreatCommands } from './threat-commands.js';
import { addRestoreCommand } from './backup-commands.js';
import { addServerKeyCommands } from './key-commands.js';
import { addServerConfigurationCommands } from './configuration-commands.js';
import { addServerPoolCommands, poolModeOption, poolSizeOption } from './pool-commands.js';

type Server = Record<string, unknown>;
const LIST_COLUMNS = [
  'name',
  'state',
  'administratorLogin',
  'sslEnforcement',
  'minimalTlsVersion',
  'publicNetworkAccess',
  'poolMode',
  'poolSize',
  'mode',
  'fullyQualifiedDomainName',
];

const sslOption = () => new Option('--ssl-enforcement <value>', 'require TLS from clients').choices(['Enabled', 'Disabled']);
const tlsOption = () => new Option('--minimal-tls-version <value>', 'lowest TLS version accepted').choices(['TLS1_2', 'TLS1_3', 'TLSEnforcementDisabled']);
const publicOption = () => new Option('--public-network-access <value>', 'allow connections from public addresses').choices(['Enabled', 'Disabled']);

async function adminPassword(given: string | undefined, required: boolean): Promise<string | undefined> {
  if (given !== undefined) return given;
  if (process.env.PGWARDEN_ADMIN_PASSWORD) return process.env.PGWARDEN_ADMIN_PASSWORD;
  if (!required) return undefined;
  try {
    return await promptSecret('Administrator password: ');
  } catch {
    throw new Error('An administrator password is required: use --admin-password, PGWARDEN_ADMIN_PASSWORD or run in a terminal to be prompted.');
  }
}

/** The maintenance password: never from argv (it would show in `ps` and shell history). */
async function maintenancePassword(): Promise<string> {
  if (process.env.PGWARDEN_MAINTENANCE_PASSWORD) return process.env.PGWARDEN_MAINTENANCE_PASSWORD;
  try {
    return await promptSecret('Maintenance password: ');
  } catch {
    throw new Error('A maintenance password is required: set PGWARDEN_MAINTENANCE_PASSWORD or run in a terminal to be prompted.');
  }
}

export function serverCommand(): Command {
  const server = new Command('server').description('manage PostgreSQL servers');

  server
    .command('create')
    .description('create a managed PostgreSQL server')
    .argument('<name>', 'server name: 3-63 lowercase letters, digits, hyphens')
    .requiredOption('--admin-user <login>', 'administrator login')
    .option('--admin-password <password>', 'administrator password (or PGWARDEN_ADMIN_PASSWORD, or a prompt)')
    .addOption(sslOption())
    .addOption(tlsOption())
    .addOption(publicOption())
    .action(async (name: string, o: Record<string, string | undefined>, cmd: Command) => {
      const ctx = contextOf(cmd);
      const body = {
        name,
        administratorLogin: o.adminUser,
        administratorLoginPassword: await adminPassword(o.adminPassword, true),
        sslEnforcement: o.sslEnforcement,
        minimalTlsVersion: o.minimalTlsVersion,
        publicNetworkAccess: o.publicNetworkAccess,
      };
      show(ctx.output, await ctx.call<Server>('POST', '/servers', body));
    });

  server
    .command('attach')
    .description('attach a PostgreSQL cluster an HA engine runs (Patroni, CloudNativePG): the gateway fronts its primary')
    .argument('<name>', 'server name: 3-63 lowercase letters, digits, hyphens')
    .requiredOption('--endpoints <list>', 'HOST:PORT of every node, comma-separated')
    .requiredOption('--tls-ca <file>', "PEM file of the CA the nodes' certificates are issued by (verify-full)")
    .requiredOption('--maintenance-user <user>', 'a superuser of the cluster (password from PGWARDEN_MAINTENANCE_PASSWORD or a prompt)')
    .requiredOption('--admin-user <login>', 'administrator login')
    .option('--admin-password <password>', 'when given, the administrator role is created (or its password set) on the cluster')
    .addOption(sslOption())
    .addOption(tlsOption())
    .addOption(publicOption())
    .action(async (name: string, o: Record<string, string | undefined>, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { readFileSync } = await import('node:fs');
      let tlsCa: string;
      try {
        tlsCa = readFileSync(o.tlsCa!, 'utf8');
      } catch (err) {
        throw new Error(`Cannot read the CA file ${o.tlsCa}: ${(err as Error).message}`);
      }
      const body = Object.fromEntries(
        Object.entries({
          mode: 'attached',
          name,
          administratorLogin: o.adminUser,
          administratorLoginPassword: o.adminPassword ?? process.env.PGWARDEN_ADMIN_PASSWORD,
          endpoints: o
            .endpoints!.split(',')
            .map((e) => e.trim())
            .filter(Boolean),
          tlsCa,
          maintenanceUser: o.maintenanceUser,
          maintenancePassword: await maintenancePassword(),
          sslEnforcement: o.sslEnforcement,
          minimalTlsVersion: o.minimalTlsVersion,
          publicNetworkAccess: o.publicNetworkAccess,
        }).filter(([, v]) => v !== undefined),
      );
      show(ctx.output, await ctx.call<Server>('POST', '/servers', body));
    });

  server
    .command('list')
    .description('list servers')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { value } = await ctx.call<{ value: Server[] }>('GET', '/servers');
      show(ctx.output, value, LIST_COLUMNS);
    });

  server
    .command('show')
    .description('show one server')
    .argument('<name>')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      show(ctx.output, await ctx.call<Server>('GET', `/servers/${encodeURIComponent(name)}`));
    });

  server
    .command('update')
    .description('change settings or the administrator password')
    .argument('<name>')
    .option('--admin-password <password>', 'new administrator password (or PGWARDEN_ADMIN_PASSWORD)')
    .addOption(sslOption())
    .addOption(tlsOption())
    .addOption(publicOption())
    .addOption(new Option('--password-auth <value>', 'accept password logins (Disabled: token logins only)').choices(['Enabled', 'Disabled']))
    .addOption(poolModeOption())
    .addOption(poolSizeOption())
    .action(async (name: string, o: Record<string, string | number | undefined>, cmd: Command) => {
      const ctx = contextOf(cmd);
      const body = Object.fromEntries(
        Object.entries({
          administratorLoginPassword: await adminPassword(o.adminPassword as string | undefined, false),
          sslEnforcement: o.sslEnforcement,
          minimalTlsVersion: o.minimalTlsVersion,
          publicNetworkAccess: o.publicNetworkAccess,
          passwordAuth: o.passwordAuth,
          poolMode: o.poolMode,
          poolSize: o.poolSize,
        }).filter(([, v]) => v !== undefined),
      );
      if (Object.keys(body).length === 0) throw new Error('Nothing to update: give at least one setting.');
      show(ctx.output, await ctx.call<Server>('PATCH', `/servers/${encodeURIComponent(name)}`, body));
    });

  for (const verb of ['stop', 'start'] as const) {
    server
      .command(verb)
      .description(`${verb} a server`)
      .argument('<name>')
      .action(async (name: string, _o: unknown, cmd: Command) => {
        const ctx = contextOf(cmd);
        show(ctx.output, await ctx.call<Server>('POST', `/servers/${encodeURIComponent(name)}/${verb}`));
      });
  }

  server
    .command('delete')
    .description('stop a server and remove its data')
    .argument('<name>')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (name: string, o: { yes?: boolean }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if (!o.yes && process.stdin.isTTY) {
        const { createInterface } = await import('node:readline/promises');
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`Delete server '${name}' and all its data? (y/N) `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) return;
      }
      await ctx.call('DELETE', `/servers/${encodeURIComponent(name)}`);
      if (ctx.output === 'json') process.stdout.write('{}\n');
      else process.stdout.write(`Server '${name}' deleted.\n`);
    });

  addServerNetworkCommands(server);

  addIdentityCommands(server);
  addServerAuditCommands(server);
  addServerThreatCommands(server);
  addRestoreCommand(server);
  addServerKeyCommands(server);
  addServerConfigurationCommands(server);
  addServerPoolCommands(server);
  return server;
}
