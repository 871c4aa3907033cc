// A cache bounded by entry count and by an estimate of bytes held, evicting with the CLOCK
// ("second chance") approximation of least-recently-used: a hit only sets a flag; eviction walks
// from the oldest entry, giving flagged ones another round at the back. Hits stay cheap.

interface Slot<V> {
  readonly value: V;
  readonly bytes: number;
  used: boolean;
}

export class LruCache<V> {
  private readonly slots = new Map<string, Slot<V>>();
  private held = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.slots.size;
  }

  get bytes(): number {
    return this.held;
  }

  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  /** Stores `value`, evicting as needed; a value larger than the whole budget is not kept. */
  set(key: string, value: V, bytes: number): void {
    const old = this.slots.get(key);
    if (old !== undefined) {
      this.slots.delete(key);
      this.held -= old.bytes;
    }
    if (bytes > this.maxBytes || this.maxEntries <= 0) return;
    while (this.slots.size >= this.maxEntries || this.held + bytes > this.maxBytes) this.evictOne();
    this.slots.set(key, { value, bytes, used: false });
    this.held += bytes;
  }

  /** Every value held, oldest first (for statistics; does not count as use). */
  *values(): IterableIterator<V> {
    for (const slot of this.slots.values()) yield slot.value;
  }

  clear(): void {
    this.slots.clear();
    this.held = 0;
  }

  private evictOne(): void {
    for (const [key, slot] of this.slots) {
      this.slots.delete(key);
      if (slot.used) {
        slot.used = false;
        this.slots.set(key, slot); // second chance
        continue;
      }
      this.held -= slot.bytes;
      return;
    }
  }
}
