// A Map that forgets its least recently touched entries beyond a size limit: detector and
// throttle state keyed by attacker-chosen values (addresses, role names) stays bounded.

export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  /** Sets and marks the entry as most recently used. */
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.limit) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  /** The entry, moved to most recently used, made with `make` when absent. */
  upsert(key: K, make: () => V): V {
    let v = this.map.get(key);
    if (v === undefined) v = make();
    this.set(key, v);
    return v;
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }

  clear(): void {
    this.map.clear();
  }
}

/** Event times in a sliding window (ms). */
export class SlidingWindow {
  private times: number[] = [];

  add(t: number, windowMs: number): number {
    this.trim(t, windowMs);
    this.times.push(t);
    return this.times.length;
  }

  count(t: number, windowMs: number): number {
    this.trim(t, windowMs);
    return this.times.length;
  }

  reset(): void {
    this.times = [];
  }

  private trim(t: number, windowMs: number): void {
    const from = t - windowMs;
    let i = 0;
    while (i < this.times.length && this.times[i]! <= from) i++;
    if (i > 0) this.times.splice(0, i);
  }
}

/** Distinct values seen in a sliding window (ms), with the last time each was seen. */
export class DistinctWindow {
  private readonly last = new Map<string, number>();

  constructor(private readonly limit = 10_000) {}

  add(value: string, t: number, windowMs: number): number {
    this.last.delete(value);
    this.last.set(value, t);
    if (this.last.size > this.limit) this.last.delete(this.last.keys().next().value!);
    return this.count(t, windowMs);
  }

  count(t: number, windowMs: number): number {
    const from = t - windowMs;
    for (const [v, at] of this.last) {
      if (at > from) break; // insertion order is time order
      this.last.delete(v);
    }
    return this.last.size;
  }

  values(): string[] {
    return [...this.last.keys()];
  }
}
