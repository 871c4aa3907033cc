// pgwarden server threat-protection update|show, pgwarden server protection list|unblock,
// pgwarden alert list|show|dismiss|resolve
import { Command, Option } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);
const seg = (s: string) => encodeURIComponent(s);

export function addServerThreatCommands(server: Command): void {
  const tp = new Command('threat-protection').description("a server's security alert policy (threat protection)");
  tp.command('update')
    .requiredOption('--server <server>')
    .addOption(new Option('--state <state>').choices(['Enabled', 'Disabled']))
    .option('--email-addresses <list>', 'who is e-mailed alerts (comma separated; empty string for none)')
    .option('--webhook <url...>', 'webhook URL(s) alerts are POSTed to, signed with HMAC-SHA256 (`none` for none)')
    .option('--webhook-secret <secret>', 'the signing secret (default: PGWARDEN_WEBHOOK_SECRET, else one is generated and printed once)')
    .option('--disabled-alerts <list>', 'alert types not raised, e.g. PrincipalAnomaly,GeoAnomaly (empty string for none)')
    .option('--retention-days <n>', 'days alerts are kept')
    .addOption(new Option('--auto-protection <state>', 'throttle addresses that keep failing to log in').choices(['Enabled', 'Disabled']))
    .option('--learning-period-seconds <n>', 'how long the principal and location detectors only learn after the policy is enabled')
    .option('--principal-anomaly-days <n>', 'a principal not seen for this many days is anomalous')
    .action(async (o: Record<string, string | string[] | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const str = (k: string) => o[k] as string | undefined;
      const hooks = o.webhook as string[] | undefined;
      const secret = str('webhookSecret') ?? process.env.PGWARDEN_WEBHOOK_SECRET;
      const detectors = {
        ...(str('learningPeriodSeconds') !== undefined ? { learningPeriodSeconds: Number(str('learningPeriodSeconds')) } : {}),
        ...(str('principalAnomalyDays') !== undefined ? { principalAnomalyDays: Number(str('principalAnomalyDays')) } : {}),
      };
      const body = {
        ...(str('state') ? { state: str('state') } : {}),
        ...(str('emailAddresses') !== undefined ? { emailAddresses: list(str('emailAddresses')!) } : {}),
        ...(hooks ? { webhooks: hooks.filter((u) => u !== 'none').map((url) => ({ url, ...(secret ? { secret } : {}) })) } : {}),
        ...(str('disabledAlerts') !== undefined ? { disabledAlerts: list(str('disabledAlerts')!) } : {}),
        ...(str('retentionDays') !== undefined ? { retentionDays: Number(str('retentionDays')) } : {}),
        ...(str('autoProtection') ? { autoProtection: { state: str('autoProtection') } } : {}),
        ...(Object.keys(detectors).length ? { detectors } : {}),
      };
      if (Object.keys(body).length === 0) throw new Error('Nothing to update: give --state, --email-addresses, --webhook, --disabled-alerts, --retention-days or --auto-protection.');
      const r = await ctx.call<Record<string, unknown> & { generatedWebhookSecrets?: Record<string, string> }>('PATCH', `/servers/${seg(String(o.server))}/securityAlertPolicy`, body);
      if (ctx.output !== 'json' && r.generatedWebhookSecrets) {
        for (const [url, s] of Object.entries(r.generatedWebhookSecrets)) {
          process.stderr.write(`Webhook ${url}: signing secret (shown once) ${s}\n`);
        }
        delete r.generatedWebhookSecrets;
      }
      show(ctx.output, r);
    });
  tp.command('show').requiredOption('--server <server>').action(async (o: { server: string }, c: Command) => {
    const ctx = contextOf(c);
    show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${seg(o.server)}/securityAlertPolicy`));
  });
  server.addCommand(tp);

  const protection = new Command('protection').description("the automatic protection's temporary blocks");
  protection.command('list').requiredOption('--server <server>').action(async (o: { server: string }, c: Command) => {
    const ctx = contextOf(c);
    const r = await ctx.call<{ value: Record<string, unknown>[] }>('GET', `/servers/${seg(o.server)}/protection/blocks`);
    show(ctx.output, r.value, ['id', 'scope', 'address', 'user', 'failures', 'until']);
  });
  protection.command('unblock')
    .requiredOption('--server <server>')
    .requiredOption('--id <id>', 'the block id from `protection list`')
    .action(async (o: { server: string; id: string }, c: Command) => {
      const ctx = contextOf(c);
      await ctx.call('DELETE', `/servers/${seg(o.server)}/protection/blocks/${seg(o.id)}`);
      if (ctx.output !== 'json') process.stdout.write(`Unblocked ${o.id}.\n`);
    });
  server.addCommand(protection);
}

export function alertCommand(): Command {
  const alert = new Command('alert').description('threat protection alerts');
  alert.command('list')
    .option('--server <server>')
    .addOption(new Option('--severity <severity>').choices(['Low', 'Medium', 'High']))
    .addOption(new Option('--state <state>').choices(['Active', 'Resolved', 'Dismissed']))
    .option('--type <type>', 'BruteForce, HarmfulApplication, PrincipalAnomaly, GeoAnomaly, NetworkAnomaly, SuspiciousIp, SqlInjection, SqlInjectionVulnerability')
    .option('--since <time>', 'ISO 8601')
    .action(async (o: Record<string, string | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const q = new URLSearchParams();
      for (const k of ['server', 'severity', 'state', 'type']) if (o[k]) q.set(k, o[k]!);
      if (o.since) q.set('since', new Date(o.since).toISOString());
      const r = await ctx.call<{ value: Record<string, unknown>[] }>('GET', `/alerts${q.size ? `?${q}` : ''}`);
      show(ctx.output, r.value, ['id', 'server', 'type', 'severity', 'state', 'count', 'sourceAddress', 'principal', 'lastSeen']);
    });
  alert.command('show')
    .requiredOption('--server <server>')
    .argument('<id>')
    .action(async (id: string, o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${seg(o.server)}/alerts/${seg(id)}`));
    });
  for (const verb of ['dismiss', 'resolve'] as const) {
    alert.command(verb)
      .requiredOption('--server <server>')
      .argument('<id>')
      .action(async (id: string, o: { server: string }, c: Command) => {
        const ctx = contextOf(c);
        show(ctx.output, await ctx.call<Record<string, unknown>>('POST', `/servers/${seg(o.server)}/alerts/${seg(id)}/${verb}`));
      });
  }
  return alert;
}
