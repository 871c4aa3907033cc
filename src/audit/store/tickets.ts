// The store's tickets: the n-th event accepted has ticket n, and the writer's results come back in
// ticket order, so "settled through n" is one number. Appends that want their seq and hash wait
// on their ticket; callers that only want to know an event is down wait on settled().

import { AuditWriteError } from './errors.js';
import { deserializeError, type FromWriter } from './writer-host.js';

export interface AppendResult {
  readonly seq: number;
  readonly hash: string;
}

interface Waiter {
  readonly resolve: (r: AppendResult) => void;
  readonly reject: (e: Error) => void;
}

interface SettleWaiter {
  readonly ticket: number;
  readonly resolve: () => void;
}

export class Tickets {
  /** Tickets issued so far. */
  issued = 0;
  settledThrough = 0;
  private readonly byTicket = new Map<number, Waiter>();
  private settleWaiters: SettleWaiter[] = [];

  issue(): number {
    return ++this.issued;
  }

  /** Issues `count` tickets in a row; the last one. */
  issueRun(count: number): number {
    this.issued += count;
    return this.issued;
  }

  /** Appends waiting for their seq and hash (the writer then sends the hashes). */
  get waiters(): number {
    return this.byTicket.size;
  }

  wait(ticket: number): Promise<AppendResult> {
    return new Promise((resolve, reject) => this.byTicket.set(ticket, { resolve, reject }));
  }

  isSettled(ticket: number): boolean {
    return ticket <= this.settledThrough;
  }

  /** Resolves (never rejects) once every event up to this ticket was written or rejected. */
  settled(ticket: number): Promise<void> {
    if (ticket <= this.settledThrough) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.settleWaiters;
      // Tickets asked for only grow, nearly always: keep the list sorted from the back.
      let i = list.length;
      while (i > 0 && list[i - 1]!.ticket > ticket) i--;
      list.splice(i, 0, { ticket, resolve });
    });
  }

  /** The writer's result for the next `m.count` tickets. */
  settle(m: Extract<FromWriter, { t: 'batch' }>): void {
    const first = this.settledThrough + 1;
    this.settledThrough += m.count;
    if (this.byTicket.size > 0) {
      const error = m.ok ? undefined : deserializeError(m.error!);
      let inv = 0;
      let written = 0;
      for (let i = 0; i < m.count; i++) {
        const bad = inv < m.invalid.length && m.invalid[inv]![0] === i ? m.invalid[inv++]![1] : undefined;
        const w = this.byTicket.get(first + i);
        if (bad === undefined && m.ok) written++;
        if (w === undefined) continue;
        this.byTicket.delete(first + i);
        if (bad !== undefined) w.reject(new AuditWriteError('invalid-event', bad));
        else if (error) w.reject(error);
        else w.resolve({ seq: m.firstSeq + written - 1, hash: m.hashes.slice(64 * (written - 1), 64 * written) });
      }
    }
    const list = this.settleWaiters;
    if (list.length > 0 && list[0]!.ticket <= this.settledThrough) {
      let n = 0;
      while (n < list.length && list[n]!.ticket <= this.settledThrough) list[n++]!.resolve();
      list.splice(0, n);
    }
  }
}
