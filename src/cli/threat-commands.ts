// pgwarden server threat-protection update|show, pgwarden server protection list|unblock,
// pgwarden alert list|show|dismiss|resolve, pgwarden threat sql-check
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { FINGERPRINT_PATTERN, sqliAllowEntry } from '../threat/sql/allow.js';
import { statementOfLine, verdictLine } from '../threat/sql/check-lines.js';
import type { SqlCheckResult } from '../threat/sql/detector.js';
import { contextOf } from './context.js';
import { show } from './output.js';

const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
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
    .option('--sqli-allow <fingerprint...>', 'silence SqlInjection alerts of one statement shape (the fingerprint an alert or `threat sql-check` shows)')
    .option('--sqli-unallow <fingerprint...>', 'take back a --sqli-allow')
    .action(async (o: Record<string, string | string[] | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const str = (k: string) => o[k] as string | undefined;
      const allow = (o.sqliAllow as string[] | undefined) ?? [];
      const unallow = (o.sqliUnallow as string[] | undefined) ?? [];
      for (const fp of [...allow, ...unallow])
        if (!FINGERPRINT_PATTERN.test(fp.toLowerCase()))
          throw new Error(`'${fp}' is not a statement fingerprint (16 hex digits, as alerts and \`pgwarden threat sql-check\` show).`);
      let disabled = str('disabledAlerts') !== undefined ? list(str('disabledAlerts')!) : undefined;
      if (allow.length || unallow.length) {
        // Exclusions are kept in disabledAlerts: start from the list given, else the current one.
        if (!disabled) {
          const current = await ctx.call<{ disabledAlerts: string[] }>('GET', `/servers/${seg(String(o.server))}/securityAlertPolicy`);
          disabled = current.disabledAlerts;
        }
        const drop = new Set(unallow.map(sqliAllowEntry));
        disabled = [...new Set([...disabled.filter((d) => !drop.has(d as ReturnType<typeof sqliAllowEntry>)), ...allow.map(sqliAllowEntry)])];
      }
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
        ...(disabled !== undefined ? { disabledAlerts: disabled } : {}),
        ...(str('retentionDays') !== undefined ? { retentionDays: Number(str('retentionDays')) } : {}),
        ...(str('autoProtection') ? { autoProtection: { state: str('autoProtection') } } : {}),
        ...(Object.keys(detectors).length ? { detectors } : {}),
      };
      if (Object.keys(body).length === 0)
        throw new Error(
          'Nothing to update: give --state, --email-addresses, --webhook, --disabled-alerts, --sqli-allow, --retention-days or --auto-protection.',
        );
      const r = await ctx.call<Record<string, unknown> & { generatedWebhookSecrets?: Record<string, string> }>(
        'PATCH',
        `/servers/${seg(String(o.server))}/securityAlertPolicy`,
        body,
      );
      if (ctx.output !== 'json' && r.generatedWebhookSecrets) {
        for (const [url, s] of Object.entries(r.generatedWebhookSecrets)) {
          process.stderr.write(`Webhook ${url}: signing secret (shown once) ${s}\n`);
        }
        delete r.generatedWebhookSecrets;
      }
      show(ctx.output, r);
    });
  tp.command('show')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${seg(o.server)}/securityAlertPolicy`));
    });
  server.addCommand(tp);

  const protection = new Command('protection').description("the automatic protection's temporary blocks");
  protection
    .command('list')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      const r = await ctx.call<{ value: Record<string, unknown>[] }>('GET', `/servers/${seg(o.server)}/protection/blocks`);
      show(ctx.output, r.value, ['id', 'scope', 'address', 'user', 'failures', 'until']);
    });
  protection
    .command('unblock')
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
  alert
    .command('list')
    .option('--server <server>')
    .addOption(new Option('--severity <severity>').choices(['Low', 'Medium', 'High']))
    .addOption(new Option('--state <state>').choices(['Active', 'Resolved', 'Dismissed']))
    .option(
      '--type <type>',
      'BruteForce, HarmfulApplication, PrincipalAnomaly, GeoAnomaly, NetworkAnomaly, SuspiciousIp, SqlInjection, SqlInjectionVulnerability',
    )
    .option('--since <time>', 'ISO 8601')
    .action(async (o: Record<string, string | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const q = new URLSearchParams();
      for (const k of ['server', 'severity', 'state', 'type']) if (o[k]) q.set(k, o[k]!);
      if (o.since) q.set('since', new Date(o.since).toISOString());
      const r = await ctx.call<{ value: Record<string, unknown>[] }>('GET', `/alerts${q.size ? `?${q}` : ''}`);
      show(ctx.output, r.value, ['id', 'server', 'type', 'severity', 'state', 'count', 'sourceAddress', 'principal', 'lastSeen']);
    });
  alert
    .command('show')
    .requiredOption('--server <server>')
    .argument('<id>')
    .action(async (id: string, o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${seg(o.server)}/alerts/${seg(id)}`));
    });
  for (const verb of ['dismiss', 'resolve'] as const) {
    alert
      .command(verb)
      .requiredOption('--server <server>')
      .argument('<id>')
      .action(async (id: string, o: { server: string }, c: Command) => {
        const ctx = contextOf(c);
        show(ctx.output, await ctx.call<Record<string, unknown>>('POST', `/servers/${seg(o.server)}/alerts/${seg(id)}/${verb}`));
      });
  }
  return alert;
}

/** Statements per API call, and their bytes (the API takes bodies up to 1 MiB). */
const BATCH = 500;
const BATCH_BYTES = 512 * 1024;

/** pgwarden threat sql-check: the SQL-injection detector's verdict on statements from stdin. */
export function threatCommand(): Command {
  const threat = new Command('threat').description('threat protection tools');
  threat
    .command('sql-check')
    .description('read statements from stdin, one per line (JSON {"sql": "..."} or plain SQL), and print the detector\'s verdict on each as one JSON line')
    .option('--server <server>', "judge with the server's learned application shapes (needs the platform's API); without it the detector alone, offline")
    .option('--application <app>', 'the application name whose learned shapes apply (with --server)')
    .option('--role <role>', 'the role whose learned shapes apply (with --server; default: any role of the application)')
    .action(async (o: { server?: string; application?: string; role?: string }, c: Command) => {
      const ctx = contextOf(c);
      if (!o.server && (o.application !== undefined || o.role !== undefined))
        throw new Error('--application and --role need --server: learned shapes belong to a server.');
      let judge: (texts: string[]) => Promise<SqlCheckResult[]>;
      if (o.server) {
        const route = `/servers/${seg(o.server)}/sqlCheck`;
        judge = async (texts) =>
          (
            await ctx.call<{ value: SqlCheckResult[] }>('POST', route, {
              statements: texts.map((sql) => ({ sql })),
              ...(o.application !== undefined ? { application: o.application } : {}),
              ...(o.role !== undefined ? { role: o.role } : {}),
            })
          ).value;
      } else {
        // Loaded here: the parser's WebAssembly is only for this command.
        const { SqlInjectionDetector } = await import('../threat/sql/detector.js');
        const detector = new SqlInjectionDetector();
        judge = async (texts) => texts.map((t) => detector.check(t, { application: null, role: null, learned: false }));
      }
      let batch: string[] = [];
      let bytes = 0;
      const flush = async () => {
        if (!batch.length) return;
        const results = await judge(batch);
        batch = [];
        bytes = 0;
        process.stdout.write(results.map((r) => `${verdictLine(r)}\n`).join(''));
      };
      for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
        const sql = statementOfLine(line);
        if (bytes + sql.length > BATCH_BYTES) await flush();
        batch.push(sql);
        bytes += sql.length;
        if (batch.length >= BATCH) await flush();
      }
      await flush();
    });
  return threat;
}
