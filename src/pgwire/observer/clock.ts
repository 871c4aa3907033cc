// The time of the bytes a session observer is fed: the native relay says when it read each
// direction's bytes (its events come in batches, a query and its answer often in one), the
// JavaScript relays feed bytes as they read them (now). Consumers that measure time (the
// statement audit's durations, its events' times) read it instead of the time they are called at.

export class ObserverClock {
  private at: number | null = null;

  /** performance.now() milliseconds: the time of what is being fed, else now. */
  readonly now = (): number => this.at ?? performance.now();

  /** The bytes fed from now on were read at `at` (performance.now() ms); null: now. */
  set(at: number | null): void {
    this.at = at;
  }

  /** The same time on the wall clock (Date.now() ms): how long ago it was, from now. */
  wallMs(): number {
    const ms = Date.now();
    return this.at === null ? ms : Math.round(ms - (performance.now() - this.at));
  }
}
