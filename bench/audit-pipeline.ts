// Statement audit pipeline micro-benchmark: the gateway's per-statement audit work without
// sockets, TLS, pgbench or PostgreSQL, so a change to it can be measured in seconds and without
// the noise of a 2-core machine shared by client, gateway and server.
// Per statement, as in the relay of `pgbench -S` (simple protocol): the client's Query bytes and
// the server's RowDescription/DataRow/CommandComplete/ReadyForQuery bytes go through a
// SessionAudit (taps, classifier with its shape cache, joiner); each statement event is
// published on an EventBus as the gateway's connection.ts builds it, recorded by an AuditLog
// (batched durability) into a real audit store whose writer runs in its worker thread.
// Reported: statements/s and CPU per statement of the event loop (this thread) and of the whole
// process (the writer thread, V8's GC helpers and libuv included), from /proc.
// Run: npx tsc -p . && node dist/bench/audit-pipeline.js [--statements 100000] [--rate 20000] [--sessions 16] [--repeat 3]
//      [--default-classes]  (ROLE, DDL: classified, not recorded; the difference to the default run is what recording costs)
// (not a timed test, gates nothing)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { AuditLog } from '../src/audit/audit-log.js';
import { StatementAuditPolicies, startSessionAudit } from '../src/audit/statement-audit.js';
import { DEFAULT_AUDIT_SETTINGS } from '../src/audit/settings.js';
import { eventSession, statementExecuted } from '../src/audit/statement-json.js';
import { EventBus, now } from '../src/events/bus.js';
import { SessionObserver } from '../src/pgwire/observer/index.js';
import { onCleanup, runBench } from './lib/cleanup.js';
import { fixed, table } from './lib/format.js';
import { processCpuMs, threadCpuMs } from './lib/proc-cpu.js';
import { cpuByThreadName, threadCpuDelta } from './lib/thread-cpu.js';

const { values: flags } = parseArgs({
  options: {
    statements: { type: 'string', default: '100000' },
    /** Statements per second offered (0: as fast as the event loop goes); sets the writer's batch sizes. */
    rate: { type: 'string', default: '20000' },
    sessions: { type: 'string', default: '16' },
    repeat: { type: 'string', default: '3' },
    /** Pace the loop without feeding the taps: the event loop's cost of the pacing alone. */
    idle: { type: 'boolean', default: false },
    /** The server's default classes (ROLE, DDL): every statement decoded and classified, none recorded. */
    'default-classes': { type: 'boolean', default: false },
  },
});
const STATEMENTS = Number(flags.statements);
const SESSIONS = Number(flags.sessions);
const REPEAT = Number(flags.repeat);
const RATE = Number(flags.rate);

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`);
const query = (aid: number) => message('Q', cstr(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`));
const rowDescription = message('T', Buffer.concat([Buffer.from([0, 1]), cstr('abalance'), Buffer.alloc(18)]));
const dataRow = message('D', Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1]), Buffer.from('0')]));
const answer = Buffer.concat([rowDescription, dataRow, message('C', cstr('SELECT 1')), message('Z', Buffer.from('I'))]);

await runBench(async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pgw-bench-audit-pipeline-'));
  onCleanup('temp dir', () => rm(root, { recursive: true, force: true }));
  const bus = new EventBus();
  // Threat protection subscribes to every event too (it ignores statements).
  bus.subscribe((e) => void (e.type === 'auth.failed' ? e : null));
  const log = await AuditLog.open(
    {
      dir: path.join(root, 'audit'),
      keyFile: path.join(root, 'audit-signing.pem'),
      witnessFile: path.join(root, 'witness', 'checkpoint-latest.json'),
      durability: 'batched',
      policy: 'failOpen',
      log: pino({ level: 'warn' }, pino.destination(2)),
    },
    bus,
  );
  onCleanup('audit log', () => log.close());
  const config = new StatementAuditPolicies().forServer('bench', {
    ...DEFAULT_AUDIT_SETTINGS,
    ...(flags['default-classes'] ? {} : { classes: ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC', 'MISC_SET'] }),
  })!;
  const sessions = Array.from({ length: SESSIONS }, (_, i) => {
    const conn = {
      connId: `9b0d8925-70e2-4971-827f-63e98e01b${String(i).padStart(3, '0')}`,
      clientAddress: '127.0.0.1',
      clientPort: 40000 + i,
      listener: 'public' as const,
    };
    const facts = { server: 'bench', user: 'benchadmin', database: 'postgres', applicationName: 'pgw-bench' };
    // As src/gateway/connection.ts publishes a statement.
    const session = eventSession(conn, facts);
    return new SessionObserver([
      startSessionAudit(
        config,
        (st) => bus.publish(statementExecuted(now(), session, st)),
        () => undefined,
      ),
    ]);
  });
  const queries = Array.from({ length: 4096 }, (_, i) => query(1 + ((i * 7919) % 100000)));

  const rows: string[][] = [];
  /** µs per statement by thread name, mean over the measured rounds. */
  const byThread = new Map<string, number>();
  for (let r = 0; r <= REPEAT; r++) {
    const n = r === 0 ? Math.min(STATEMENTS, 50_000) : STATEMENTS; // round 0: warm-up
    await log.store.settled(log.store.lastTicket);
    const main0 = threadCpuMs(process.pid);
    const all0 = processCpuMs(process.pid);
    const threads0 = cpuByThreadName(process.pid);
    const t0 = process.hrtime.bigint();
    // Turns of the event loop of a few statements each, as the relay sees them, paced to RATE.
    const PER_TURN = 16;
    for (let done = 0; done < n; ) {
      for (let k = 0; k < PER_TURN && done < n; k++, done++) {
        if (flags.idle) continue;
        const s = sessions[done % SESSIONS]!;
        s.fromClient(queries[done % queries.length]!);
        s.fromServer(answer);
      }
      const aheadMs = RATE > 0 ? (done / RATE) * 1000 - Number(process.hrtime.bigint() - t0) / 1e6 : 0;
      if (aheadMs >= 1) await new Promise((res) => setTimeout(res, aheadMs));
      else await new Promise((res) => setImmediate(res));
    }
    await log.store.settled(log.store.lastTicket);
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const mainMs = threadCpuMs(process.pid) - main0;
    const allMs = processCpuMs(process.pid) - all0;
    const threads = threadCpuDelta(threads0, cpuByThreadName(process.pid));
    if (r === 0) continue;
    for (const [name, ms] of threads) byThread.set(name, (byThread.get(name) ?? 0) + (1000 * ms) / n / REPEAT);
    rows.push([String(r), fixed((n / wallMs) * 1000, 0), fixed((1000 * mainMs) / n, 2), fixed((1000 * (allMs - mainMs)) / n, 2), fixed((1000 * allMs) / n, 2)]);
  }
  console.log(
    `audit pipeline: ${STATEMENTS} pgbench -S statements per round over ${SESSIONS} sessions${RATE > 0 ? ` at ${RATE}/s` : ''}, batched durability, writer thread`,
  );
  console.log(table(['round', 'statements/s', 'event loop CPU µs/stmt', 'other threads µs/stmt', 'process CPU µs/stmt'], rows));
  const threadRows = [...byThread].filter(([, us]) => us >= 0.05).sort((a, b) => b[1] - a[1]);
  console.log(
    table(
      ['thread', 'CPU µs/stmt (mean of rounds)'],
      threadRows.map(([name, us]) => [name, fixed(us, 2)]),
    ),
  );
  const stats = log.store.stats();
  console.log(`store: ${stats.appended} records, ${stats.writes} writes, ${stats.checkpoints} checkpoints`);
});
