// A FIFO of what the server has still to answer: an array with a moving head, compacted now and
// then, so pipelines of thousands of messages cost O(1) per message.

export class PendingQueue<T extends { readonly kind: string }> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  /** The newest item. */
  last(): T | undefined {
    return this.size > 0 ? this.items[this.items.length - 1] : undefined;
  }

  /**
   * Walks the items after the head, oldest first, in one pass: `keep` says whether each stays;
   * once it returns 'stop', the rest stay as they are.
   */
  filterAfterHead(keep: (item: T) => boolean | 'stop'): void {
    const items = this.items;
    let write = this.head + 1;
    let read = this.head + 1;
    for (; read < items.length; read++) {
      const verdict = keep(items[read]!);
      if (verdict === 'stop') break;
      if (verdict) items[write++] = items[read]!;
    }
    if (write === read) return;
    for (; read < items.length; read++) items[write++] = items[read]!;
    items.length = write;
  }

  pop(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.head++;
    if (this.head === this.items.length) {
      // Emptied by pops, not `length = 0` (a runtime call: ten times the cost for a few items).
      const items = this.items;
      while (items.length > 0) items.pop();
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes the oldest item of this kind (normally the head). */
  removeFirst(kind: T['kind']): T | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i]!;
      if (item.kind !== kind) continue;
      if (i === this.head) this.pop();
      else this.items.splice(i, 1);
      return item;
    }
    return undefined;
  }

  /** Empties the queue, oldest first. */
  drain(): T[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }
}
