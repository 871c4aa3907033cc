// How often one alert is re-sent to one target. The alert store deduplicates an incident into
// one alert whose count grows, and the caller may hand every update to the dispatcher; this
// decides which of them reach people:
//   - the first delivery of an alert id to a target always goes out;
//   - a later one goes out only when the count has grown since the last one sent AND at least
//     the resend interval (default 15 minutes) has passed since it;
//   - a failed delivery counts as sent (its retries are already spent): the next growth after
//     the interval tries again; a delivery dropped from a full queue does not count.
// Marks are bounded (least recently set forgotten first): a forgotten alert may be re-sent early.
import { BoundedMap } from '../bounded-map.js';

export interface ResendMark {
  readonly count: number;
  readonly atMs: number;
}

/** The pure rule: may a delivery with `count` go out at `nowMs` after `previous`? */
export function mayResend(previous: ResendMark | undefined, count: number, nowMs: number, intervalMs: number): boolean {
  if (previous === undefined) return true;
  return count > previous.count && nowMs - previous.atMs >= intervalMs;
}

export class ResendThrottle {
  private readonly marks: BoundedMap<string, ResendMark>;

  constructor(limit = 10_000) {
    this.marks = new BoundedMap(limit);
  }

  /**
   * Takes the slot when the rule allows it: returns the mark set (to give back with `release` if
   * the delivery never happens), or null when throttled.
   */
  take(key: string, count: number, nowMs: number, intervalMs: number): { readonly mine: ResendMark; readonly previous: ResendMark | undefined } | null {
    const previous = this.marks.get(key);
    if (!mayResend(previous, count, nowMs, intervalMs)) return null;
    const mine = { count, atMs: nowMs };
    this.marks.set(key, mine);
    return { mine, previous };
  }

  /** Undoes `take` when the delivery was dropped, unless a newer one took the slot since. */
  release(key: string, taken: { readonly mine: ResendMark; readonly previous: ResendMark | undefined }): void {
    if (this.marks.get(key) !== taken.mine) return;
    if (taken.previous === undefined) this.marks.delete(key);
    else this.marks.set(key, taken.previous);
  }
}
