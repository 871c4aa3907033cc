// Reads the managed servers' pgAudit lines (jsonlog files in each server's log directory) and
// publishes them as `statement.pgaudit` events joined to the gateway session they belong to
// (by server and backend process id). Read offsets are kept in a file, so lines written while
// the platform was down are read when it is back.
import { existsSync, readFileSync, readdirSync, writeFileSync, renameSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';
import { parsePgAuditLine } from './pgaudit-line.js';
import type { EventBus } from '../events/bus.js';
import type { SessionIndex } from '../gateway/session-index.js';

const MAX_READ_PER_TICK = 4 * 1024 * 1024;

export interface IngestOptions {
  readonly stateFile: string;
  readonly servers: () => Iterable<{ readonly id: number; readonly name: string }>;
  readonly logDir: (serverId: number) => string;
  readonly sessions: SessionIndex;
  readonly bus: EventBus;
  readonly intervalMs?: number;
}

export class PgAuditIngest {
  private offsets: Record<string, number> = {};
  private carry = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly o: IngestOptions) {
    try {
      this.offsets = JSON.parse(readFileSync(o.stateFile, 'utf8')) as Record<string, number>;
    } catch {
      this.offsets = {};
    }
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? 500);
    this.timer.unref();
  }

  /** Reads what is new in every server's log; returns how many audit lines it published. */
  tick(): number {
    if (this.busy) return 0;
    this.busy = true;
    let published = 0;
    let moved = false;
    try {
      for (const server of this.o.servers()) {
        const dir = this.o.logDir(server.id);
        if (!existsSync(dir)) continue;
        for (const name of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
          const file = path.join(dir, name);
          const size = statSync(file).size;
          const from = this.offsets[file] ?? 0;
          if (size <= from) continue;
          const length = Math.min(size - from, MAX_READ_PER_TICK);
          const buf = Buffer.alloc(length);
          const fd = openSync(file, 'r');
          try {
            readSync(fd, buf, 0, length, from);
          } finally {
            closeSync(fd);
          }
          this.offsets[file] = from + length;
          moved = true;
          const text = (this.carry.get(file) ?? '') + buf.toString('utf8');
          const lines = text.split('\n');
          this.carry.set(file, lines.pop() ?? '');
          for (const line of lines) {
            const a = parsePgAuditLine(line);
            if (!a) continue;
            const session = this.o.sessions.find(server.name, a.pid);
            // The gateway already records the top-level statements of sessions it relays; from
            // pgAudit only what it cannot see: statements inside functions and DO blocks.
            if (session && a.substatementId <= 1) continue;
            this.o.bus.publish({
              type: 'statement.pgaudit',
              time: a.time,
              server: server.name,
              sessionId: session?.connId ?? null,
              backendPid: a.pid,
              user: a.user,
              database: a.database,
              applicationName: session?.applicationName ?? a.applicationName,
              auditType: a.auditType,
              statementId: a.statementId,
              substatementId: a.substatementId,
              class: a.class,
              command: a.command,
              objectType: a.objectType,
              objectName: a.objectName,
              statement: a.statement,
              parameter: a.parameter,
            });
            published++;
          }
        }
      }
      if (moved) {
        const tmp = `${this.o.stateFile}.tmp`;
        writeFileSync(tmp, JSON.stringify(this.offsets), { mode: 0o600 });
        renameSync(tmp, this.o.stateFile);
      }
    } finally {
      this.busy = false;
    }
    return published;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.tick();
  }
}
