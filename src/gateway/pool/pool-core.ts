// The decisions of one pool, with no sockets and no timers, so they can be tested alone: give an
// idle connection, let the caller open a new one, make it wait (FIFO), or close a connection.
// The adapter (pool.ts) does what is decided. `size` is passed to every call because the server
// record may change it at any time: a smaller size closes connections as they come back.

/** What a client gets: a connection to use now, or the right to open one (counted as opening). */
export type Grant<C> = { readonly kind: 'conn'; readonly conn: C } | { readonly kind: 'open' };

export interface Waiter<C> {
  readonly since: number;
  grant(g: Grant<C>): void;
}

interface IdleEntry<C> {
  readonly conn: C;
  readonly since: number;
}

export class PoolCore<C> {
  /** LIFO: the most recently used connection is lent first (its caches are warm), and the ones
   * at the bottom age out under the idle timeout when the load drops. */
  private readonly idleList: IdleEntry<C>[] = [];
  private readonly queue: Waiter<C>[] = [];
  active = 0;
  opening = 0;
  waits = 0;
  waitMs = 0;
  opened = 0;
  reused = 0;

  get idle(): number {
    return this.idleList.length;
  }

  get waiting(): number {
    return this.queue.length;
  }

  get total(): number {
    return this.active + this.idleList.length + this.opening;
  }

  /** A grant now, or null: then the caller must `enqueue` a waiter. Clients already waiting go
   * first (FIFO), so a newcomer never overtakes them. */
  request(size: number): Grant<C> | null {
    if (this.queue.length > 0) return null;
    return this.take(size);
  }

  /** An idle connection now, when nobody waits (FIFO), else null: the caller then `request`s. */
  requestIdle(): C | null {
    return this.queue.length > 0 ? null : this.popIdle();
  }

  enqueue(w: Waiter<C>): void {
    this.waits++;
    this.queue.push(w);
  }

  /** Removes a waiter that gave up (timeout, client gone); false when it was already granted. */
  cancel(w: Waiter<C>): boolean {
    const i = this.queue.indexOf(w);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** A grant of 'open' succeeded: the connection is lent to whoever opened it. */
  openSucceeded(): void {
    this.opening--;
    this.active++;
    this.opened++;
  }

  /** A grant of 'open' failed: its place goes to the next waiter. */
  openFailed(size: number, now: number): void {
    this.opening--;
    this.dispatch(size, now);
  }

  /** A lent connection comes back. Reusable ones are reset by the adapter first (counted as
   * opening meanwhile); others are closed and their place goes to the next waiter. */
  release(reusable: boolean, size: number, now: number): 'reset' | 'close' {
    this.active--;
    if (reusable && this.total < size) {
      this.opening++;
      return 'reset';
    }
    this.dispatch(size, now);
    return 'close';
  }

  /** A reset connection is ready: to the first waiter, else to the idle list, or closed when the
   * pool is over its size now. */
  returned(conn: C, size: number, now: number): 'given' | 'idle' | 'close' {
    this.opening--;
    if (this.total >= size) {
      this.dispatch(size, now);
      return 'close';
    }
    const w = this.queue.shift();
    if (w) {
      this.active++;
      this.reused++;
      this.waitMs += now - w.since;
      w.grant({ kind: 'conn', conn });
      return 'given';
    }
    this.idleList.push({ conn, since: now });
    return 'idle';
  }

  /** An idle connection that went away by itself (the server closed it). */
  removeIdle(conn: C, size: number, now: number): boolean {
    const i = this.idleList.findIndex((e) => e.conn === conn);
    if (i < 0) return false;
    this.idleList.splice(i, 1);
    this.dispatch(size, now);
    return true;
  }

  /** Idle connections unused for `idleMs`, taken out to be closed. */
  expireIdle(now: number, idleMs: number): C[] {
    const out: C[] = [];
    for (let i = this.idleList.length - 1; i >= 0; i--) {
      const e = this.idleList[i]!;
      if (now - e.since >= idleMs) {
        out.push(e.conn);
        this.idleList.splice(i, 1);
      }
    }
    return out;
  }

  /** Idle connections beyond `size` (the size was lowered), oldest first, taken out to be
   * closed, so a smaller size holds at once and not only as lent connections come back. */
  trimIdle(size: number): C[] {
    const out: C[] = [];
    while (this.idleList.length > 0 && this.total > size) out.push(this.idleList.shift()!.conn);
    return out;
  }

  /** Every idle connection, taken out to be closed (server stopped, password changed). Waiters
   * may then open new ones. */
  drainIdle(size: number, now: number): C[] {
    const out = this.idleList.map((e) => e.conn);
    this.idleList.length = 0;
    this.dispatch(size, now);
    return out;
  }

  /** Waiters that waited `timeoutMs` or more, taken out of the queue to be refused. */
  expireWaiters(now: number, timeoutMs: number): Waiter<C>[] {
    const out: Waiter<C>[] = [];
    while (this.queue.length > 0 && now - this.queue[0]!.since >= timeoutMs) {
      const w = this.queue.shift()!;
      this.waitMs += now - w.since;
      out.push(w);
    }
    return out;
  }

  /** Every waiter, taken out (the pool is closed). */
  drainWaiters(): Waiter<C>[] {
    return this.queue.splice(0);
  }

  /** Hands out what can be handed out to waiters, in order. */
  private dispatch(size: number, now: number): void {
    while (this.queue.length > 0) {
      const g = this.take(size);
      if (!g) return;
      const w = this.queue.shift()!;
      this.waitMs += now - w.since;
      w.grant(g);
    }
  }

  /** The idle connection used last (LIFO), lent. */
  private popIdle(): C | null {
    const e = this.idleList.pop();
    if (!e) return null;
    this.active++;
    this.reused++;
    return e.conn;
  }

  private take(size: number): Grant<C> | null {
    const conn = this.popIdle();
    if (conn !== null) return { kind: 'conn', conn };
    if (this.total < size) {
      this.opening++;
      return { kind: 'open' };
    }
    return null;
  }
}
