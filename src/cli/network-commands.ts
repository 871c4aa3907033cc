// pgwarden server firewall-rule|vnet-rule|private-endpoint-connection …, pgwarden network vnet …,
// and pgwarden access check: thin clients of the network routes.
import { Command, Option } from 'commander';
import { ApiError } from './api-client.js';
import { contextOf, type CliContext } from './context.js';
import { printRecord, show } from './output.js';

type Resource = Record<string, unknown>;
type Options = Record<string, string | boolean | string[] | undefined>;
const enc = encodeURIComponent;
const collect = (value: string, previous: string[] = []) => [...previous, value];
const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

async function done(ctx: CliContext, message: string): Promise<void> {
  process.stdout.write(ctx.output === 'json' ? '{}\n' : `${message}\n`);
}

async function exists(ctx: CliContext, route: string): Promise<boolean> {
  try {
    await ctx.call('GET', route);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return false;
    throw err;
  }
}

/** Adds firewall-rule, vnet-rule, private-endpoint-connection and access to `pgwarden server`. */
export function addServerNetworkCommands(server: Command): void {
  server.addCommand(firewallRuleCommand());
  server.addCommand(vnetRuleCommand());
  server.addCommand(privateEndpointCommand());
  server.addCommand(accessCommand());
}

function firewallRuleCommand(): Command {
  const cmd = new Command('firewall-rule').description("a server's IP firewall rules (deny by default)");
  const base = (o: Options) => `/servers/${enc(String(o.server))}/firewallRules`;
  const columns = ['name', 'startIpAddress', 'endIpAddress'];

  cmd
    .command('create')
    .description('allow an inclusive range of IPv4 or IPv6 addresses')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>', '1-128 letters, digits, - and _')
    .requiredOption('--start-ip-address <ip>')
    .requiredOption('--end-ip-address <ip>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      const body = { name: o.name, startIpAddress: o.startIpAddress, endIpAddress: o.endIpAddress };
      show(ctx.output, await ctx.call<Resource>('POST', base(o), body));
    });
  cmd
    .command('list')
    .description('list the rules')
    .requiredOption('--server <server>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, (await ctx.call<{ value: Resource[] }>('GET', base(o))).value, columns);
    });
  cmd
    .command('show')
    .description('show one rule')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Resource>('GET', `${base(o)}/${enc(String(o.name))}`));
    });
  cmd
    .command('update')
    .description('change the start and/or the end of a rule')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>')
    .option('--start-ip-address <ip>')
    .option('--end-ip-address <ip>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      const body = defined({ startIpAddress: o.startIpAddress, endIpAddress: o.endIpAddress });
      if (Object.keys(body).length === 0) throw new Error('Nothing to update: give --start-ip-address and/or --end-ip-address.');
      show(ctx.output, await ctx.call<Resource>('PATCH', `${base(o)}/${enc(String(o.name))}`, body));
    });
  cmd
    .command('delete')
    .description('delete a rule')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', `${base(o)}/${enc(String(o.name))}`);
      await done(ctx, `Firewall rule '${o.name}' deleted.`);
    });
  return cmd;
}

function vnetRuleCommand(): Command {
  const cmd = new Command('vnet-rule').description("a server's virtual network rules");
  const base = (o: Options) => `/servers/${enc(String(o.server))}/virtualNetworkRules`;
  const columns = ['name', 'virtualNetworkSubnetId', 'ignoreMissingVnetServiceEndpoint', 'state'];

  cmd
    .command('create')
    .description('allow a subnet (judged by its service endpoint)')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>')
    .requiredOption('--subnet <id>', 'subnet id: {vnet}/subnets/{subnet}')
    .option('--ignore-missing-endpoint', 'create the rule even if the subnet has no service endpoint')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      const body = { name: o.name, virtualNetworkSubnetId: o.subnet, ignoreMissingVnetServiceEndpoint: o.ignoreMissingEndpoint === true };
      show(ctx.output, await ctx.call<Resource>('POST', base(o), body));
    });
  cmd
    .command('list')
    .description('list the rules')
    .requiredOption('--server <server>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, (await ctx.call<{ value: Resource[] }>('GET', base(o))).value, columns);
    });
  cmd
    .command('show')
    .description('show one rule')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Resource>('GET', `${base(o)}/${enc(String(o.name))}`));
    });
  cmd
    .command('delete')
    .description('delete a rule')
    .requiredOption('--server <server>')
    .requiredOption('--name <rule>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', `${base(o)}/${enc(String(o.name))}`);
      await done(ctx, `Virtual network rule '${o.name}' deleted.`);
    });
  return cmd;
}

function privateEndpointCommand(): Command {
  const cmd = new Command('private-endpoint-connection').description("a server's private endpoint connections");
  const base = (o: Options) => `/servers/${enc(String(o.server))}/privateEndpointConnections`;
  const one = (o: Options) => `${base(o)}/${enc(String(o.id))}`;
  const flat = (r: Resource) => ({ ...r, kind: (r.privateEndpoint as { kind?: string } | undefined)?.kind });

  cmd
    .command('list')
    .description('list the connections')
    .requiredOption('--server <server>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      const { value } = await ctx.call<{ value: Resource[] }>('GET', base(o));
      show(ctx.output, ctx.output === 'json' ? value : value.map(flat), ['name', 'kind', 'status', 'description', 'updatedAt']);
    });
  cmd
    .command('show')
    .description('show one connection')
    .requiredOption('--server <server>')
    .requiredOption('--id <id>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Resource>('GET', one(o)));
    });
  cmd
    .command('create')
    .description('register an endpoint ahead of its first connection (Pending)')
    .requiredOption('--server <server>')
    .requiredOption('--id <id>', 'Azure LinkID (decimal) or AWS vpce-… id')
    .option('--description <text>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Resource>('PUT', one(o), defined({ description: o.description })));
    });
  for (const verb of ['approve', 'reject'] as const) {
    cmd
      .command(verb)
      .description(`${verb} a connection`)
      .requiredOption('--server <server>')
      .requiredOption('--id <id>')
      .option('--description <text>')
      .action(async (o: Options, c: Command) => {
        const ctx = contextOf(c);
        show(ctx.output, await ctx.call<Resource>('POST', `${one(o)}/${verb}`, defined({ description: o.description })));
      });
  }
  cmd
    .command('delete')
    .description('delete a connection')
    .requiredOption('--server <server>')
    .requiredOption('--id <id>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', one(o));
      await done(ctx, `Private endpoint connection '${o.id}' deleted.`);
    });
  return cmd;
}

/** pgwarden access check: what the gateway would decide for a connection, and why. */
export function accessCommand(): Command {
  const cmd = new Command('access').description('explain network access decisions');
  cmd
    .command('check')
    .description('would a connection with these facts get through the network rules?')
    .requiredOption('--server <server>')
    .requiredOption('--ip <address>', 'client address')
    .option('--listener <listener>', 'public, private-link, or a virtual network name', 'public')
    .option('--endpoint <id>', 'private-link: the endpoint id (LinkID or vpce-… id)')
    .option('--user <user>', 'role name (default: the server administrator)')
    .option('--database <database>', 'database name (default: the user name)')
    .option('--no-ssl', 'the client connects without TLS')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      const query = new URLSearchParams(
        defined({
          ip: o.ip,
          listener: o.listener,
          endpoint: o.endpoint,
          user: o.user,
          database: o.database,
          ssl: String(o.ssl !== false),
        }) as Record<string, string>,
      );
      const r = await ctx.call<Resource>('GET', `/servers/${enc(String(o.server))}/accessCheck?${query}`);
      if (ctx.output === 'json') return show('json', r);
      const error = r.error as { sqlstate: string; message: string } | undefined;
      process.stdout.write(`${r.allow ? 'allow' : 'deny'}\n`);
      printRecord(
        defined({
          reason: r.reason,
          rule: r.rule,
          subnet: r.subnet,
          explanation: r.explanation,
          sqlstate: error?.sqlstate,
          error: error?.message,
        }),
      );
    });
  return cmd;
}

export function networkCommand(): Command {
  const network = new Command('network').description('platform networking: virtual networks and subnets');
  const vnet = network.command('vnet').description('virtual networks: private address spaces with gateway listeners');
  const route = (name: string) => `/virtualNetworks/${enc(name)}`;
  const row = (v: Resource) => ({
    ...v,
    addressPrefixes: (v.addressPrefixes as string[]).join(','),
    subnets: (v.subnets as unknown[]).length,
  });

  vnet
    .command('create')
    .description('create a virtual network')
    .argument('<name>')
    .requiredOption('--address-prefix <cidr>', 'address space (repeatable)', collect)
    .option('--listen <address>', 'address the gateway listens on for this network')
    .action(async (name: string, o: Options, c: Command) => {
      const ctx = contextOf(c);
      if (await exists(ctx, route(name))) throw new Error(`A virtual network named '${name}' already exists: use 'network vnet update'.`);
      show(ctx.output, await ctx.call<Resource>('PUT', route(name), defined({ addressPrefixes: o.addressPrefix, listenAddress: o.listen })));
    });
  vnet
    .command('update')
    .description("change a network's address space or listen address")
    .argument('<name>')
    .option('--address-prefix <cidr>', 'address space, replacing the current one (repeatable)', collect)
    .option('--listen <address>', 'address the gateway listens on for this network')
    .option('--no-listen', 'no listener for this network')
    .action(async (name: string, o: Options, c: Command) => {
      const ctx = contextOf(c);
      const body = defined({ addressPrefixes: o.addressPrefix, listenAddress: o.listen === false ? null : o.listen });
      if (Object.keys(body).length === 0) throw new Error('Nothing to update: give --address-prefix, --listen or --no-listen.');
      show(ctx.output, await ctx.call<Resource>('PATCH', route(name), body));
    });
  vnet
    .command('list')
    .description('list virtual networks')
    .action(async (_o: unknown, c: Command) => {
      const ctx = contextOf(c);
      const { value } = await ctx.call<{ value: Resource[] }>('GET', '/virtualNetworks');
      show(ctx.output, ctx.output === 'json' ? value : value.map(row), ['name', 'addressPrefixes', 'listenAddress', 'subnets', 'listenerState']);
    });
  vnet
    .command('show')
    .description('show a virtual network and its subnets')
    .argument('<name>')
    .action(async (name: string, _o: unknown, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Resource>('GET', route(name)));
    });
  vnet
    .command('delete')
    .description('delete a virtual network and its subnets')
    .argument('<name>')
    .action(async (name: string, _o: unknown, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', route(name));
      await done(ctx, `Virtual network '${name}' deleted.`);
    });
  vnet.addCommand(subnetCommand());
  return network;
}

function subnetCommand(): Command {
  const cmd = new Command('subnet').description("a virtual network's subnets");
  const route = (o: Options) => `/virtualNetworks/${enc(String(o.vnet))}/subnets/${enc(String(o.name))}`;
  const columns = ['id', 'addressPrefix', 'serviceEndpoint'];

  cmd
    .command('create')
    .description('create a subnet inside the network')
    .requiredOption('--vnet <vnet>')
    .requiredOption('--name <subnet>')
    .requiredOption('--address-prefix <cidr>')
    .option('--service-endpoint', 'traffic from this subnet is judged by VNet rules only')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      if (await exists(ctx, route(o))) throw new Error(`Subnet '${o.name}' of virtual network '${o.vnet}' already exists: use 'subnet update'.`);
      show(ctx.output, await ctx.call<Resource>('PUT', route(o), { addressPrefix: o.addressPrefix, serviceEndpoint: o.serviceEndpoint === true }));
    });
  cmd
    .command('update')
    .description('turn the service endpoint on or off, or change the prefix')
    .requiredOption('--vnet <vnet>')
    .requiredOption('--name <subnet>')
    .addOption(new Option('--service-endpoint <enabled>').choices(['true', 'false']))
    .option('--address-prefix <cidr>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      const body = defined({
        serviceEndpoint: o.serviceEndpoint === undefined ? undefined : o.serviceEndpoint === 'true',
        addressPrefix: o.addressPrefix,
      });
      if (Object.keys(body).length === 0) throw new Error('Nothing to update: give --service-endpoint or --address-prefix.');
      show(ctx.output, await ctx.call<Resource>('PATCH', route(o), body));
    });
  cmd
    .command('list')
    .description('list subnets')
    .requiredOption('--vnet <vnet>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, (await ctx.call<{ value: Resource[] }>('GET', `/virtualNetworks/${enc(String(o.vnet))}/subnets`)).value, columns);
    });
  cmd
    .command('show')
    .description('show a subnet')
    .requiredOption('--vnet <vnet>')
    .requiredOption('--name <subnet>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Resource>('GET', route(o)));
    });
  cmd
    .command('delete')
    .description('delete a subnet (VNet rules naming it turn Unknown)')
    .requiredOption('--vnet <vnet>')
    .requiredOption('--name <subnet>')
    .action(async (o: Options, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', route(o));
      await done(ctx, `Subnet '${o.name}' of virtual network '${o.vnet}' deleted.`);
    });
  return cmd;
}
