// pgwarden server audit update|show
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { contextOf } from './context.js';
import { show } from './output.js';

const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function addServerAuditCommands(server: Command): void {
  const audit = new Command('audit').description("a server's statement audit settings");
  audit
    .command('update')
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
  audit
    .command('show')
    .requiredOption('--server <server>')
    .action(async (o: { server: string }, c: Command) => {
      const ctx = contextOf(c);
      show(ctx.output, await ctx.call<Record<string, unknown>>('GET', `/servers/${encodeURIComponent(o.server)}/auditSettings`));
    });
  server.addCommand(audit);
}

/** pgwarden audit verify|search|export */
export function auditCommand(): Command {
  const audit = new Command('audit').description('the tamper-evident audit log');

  audit
    .command('verify')
    .description("check the chain, Merkle roots and signatures of every gateway's stream; report the first bad record of each")
    .option('--stream <name>', "only this gateway's stream ('platform', 'gw-6544', 'gw-<hostId>-6544' on another host)")
    .option('--from <checkpoint>', 'start at this checkpoint index (after retention; of the first stream, or --stream)')
    .option('--witness <file>', 'a checkpoint exported earlier and kept off the host: detects a cut-off tail (of the first stream, or --stream)')
    .action(async (o: { stream?: string; from?: string; witness?: string }, c: Command) => {
      const ctx = contextOf(c);
      const body = {
        ...(o.stream !== undefined ? { stream: o.stream } : {}),
        ...(o.from !== undefined ? { fromCheckpoint: Number(o.from) } : {}),
        ...(o.witness ? { lastKnownCheckpoint: JSON.parse(readFileSync(o.witness, 'utf8')) as Record<string, unknown> } : {}),
      };
      const r = await ctx.call<VerifyAnswer>('POST', '/audit/verify', body);
      if (ctx.output === 'json') process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        // One stream: one line, as ever; several: one line per stream, named.
        const streams = r.streams ?? [{ ...r, stream: '' }];
        for (const s of streams) process.stdout.write(`${streams.length > 1 ? `${s.stream}: ` : ''}${verifyLine(s)}\n`);
      }
      if (!r.ok) process.exitCode = 1;
    });

  const filters = (cmd: Command) =>
    cmd
      .option('--server <server>')
      .option('--user <user>')
      .option('--class <class>', 'READ, WRITE, FUNCTION, ROLE, DDL, MISC, MISC_SET')
      .addOption(new Option('--outcome <outcome>').choices(['success', 'failure']))
      .option('--type <type>', 'event type, e.g. auth.failed')
      .option('--since <time>', 'ISO 8601')
      .option('--until <time>', 'ISO 8601')
      .option('--text <substring>')
      .option('--gateway <stream>', "only this gateway's records ('platform', 'gw-6544')");
  const params = (o: Record<string, string | undefined>) => {
    const q = new URLSearchParams();
    for (const k of ['server', 'user', 'class', 'outcome', 'type', 'text', 'gateway']) if (o[k] !== undefined) q.set(k, o[k]!);
    for (const k of ['since', 'until']) if (o[k] !== undefined) q.set(k, new Date(o[k]!).toISOString());
    return q;
  };

  filters(audit.command('search').description('find audit records (oldest first)'))
    .option('--limit <n>', 'records per page', '100')
    .option('--after <seq>', 'continue after this record')
    .action(async (o: Record<string, string | undefined>, c: Command) => {
      const ctx = contextOf(c);
      const q = params(o);
      q.set('limit', o.limit ?? '100');
      if (o.after) q.set('after', o.after);
      const { value, next, missing } = await ctx.call<{
        value: { seq: number; time: string; gateway?: string; event: Record<string, unknown> }[];
        next: number | string | null;
        missing?: { stream: string; reason: string }[];
      }>('GET', `/audit/events?${q}`);
      // The records of gateways that did not answer are not in this answer: said on stderr, so
      // the JSON on stdout stays a list of records.
      for (const m of missing ?? []) process.stderr.write(`not searched: ${m.stream}: unreachable: ${m.reason}\n`);
      if (ctx.output === 'json') return show('json', value as unknown as Record<string, unknown>[]);
      const rows = value.map((h) => ({
        gateway: h.gateway ?? '',
        seq: h.seq,
        time: h.time,
        type: h.event.type,
        server: h.event.server ?? '',
        user: h.event.user ?? (h.event.actor as { name?: string } | undefined)?.name ?? '',
        what: h.event.commandTag ?? h.event.command ?? h.event.action ?? h.event.reason ?? '',
        outcome: h.event.outcome ?? h.event.sqlstate ?? '',
      }));
      show('table', rows, ['gateway', 'seq', 'time', 'type', 'server', 'user', 'what', 'outcome']);
      if (next !== null) process.stdout.write(`(more: --after ${next})\n`);
    });

  filters(audit.command('export').description('write matching records as JSON lines to standard output')).action(
    async (o: Record<string, string | undefined>, c: Command) => {
      const text = await contextOf(c).call<string>('GET', `/audit/export?${params(o)}`);
      process.stdout.write(text);
    },
  );
  return audit;
}

function verifyLine(r: StreamAnswer): string {
  if (r.unreachable !== undefined) return `UNREACHABLE: ${r.unreachable}`;
  if (!r.ok) {
    const f = r.failure!;
    return `FAILED: ${f.reason} at ${f.file}:${f.line} (seq ${f.seq ?? '?'}): ${f.message}`;
  }
  const cp = r.lastCheckpoint;
  return (
    `verified: ${r.records} records (seq ${r.firstSeq}..${r.lastSeq}), ${r.checkpoints} signed checkpoints` +
    (cp ? `; last checkpoint #${cp.index} covers ${cp.size} records, root ${cp.root}, ${cp.time}` : '')
  );
}

interface VerifyAnswer extends StreamAnswer {
  /** Each gateway's stream (absent from an older platform's answer). */
  streams?: StreamAnswer[];
}

interface StreamAnswer {
  stream: string;
  ok: boolean;
  records: number;
  firstSeq: number;
  lastSeq: number;
  checkpoints: number;
  lastCheckpoint?: { index: number; size: number; root: string; time: string };
  failure?: { reason: string; file: string; line: number; seq?: number; message: string };
  /** A gateway on another host that did not answer: its stream was not verified. */
  unreachable?: string;
}
