// Turns possibly overlapping, prioritized ranges into disjoint labelled pieces ("breakpoints").
//
// Output: keys k0 < k1 < … with labels l0, l1, …: every address in [k_i, k_{i+1}) is covered
// first (lowest priority number) by the rule with id l_i, or by no rule when l_i = -1.
// Consecutive labels always differ, so the list is as short as it can be.

export interface KeyOps<K> {
  compare(a: K, b: K): number;
  /** k + 1, or null when k is the largest key of the family. */
  next(k: K): K | null;
  /** For keys that are unsigned 32-bit integers: the key itself, enabling a native sort. */
  uint32?(k: K): number;
}

export interface PrioritizedRange<K> {
  readonly start: K;
  readonly end: K;
  /** Label written for the pieces this range wins. */
  readonly id: number;
}

export interface Breakpoints<K> {
  readonly keys: K[];
  readonly labels: number[];
}

/**
 * Sweeps the ranges over the window [from, to]. ranges[i] has priority i (lower wins); ranges
 * need not lie inside the window: they are clipped. The first breakpoint is always `from`.
 */
export function sweepRanges<K>(ranges: readonly PrioritizedRange<K>[], ops: KeyOps<K>, from: K, to: K): Breakpoints<K> {
  const eventKeys: K[] = [];
  const eventCodes: number[] = []; // priority p ≥ 0 opens, ~p (< 0) closes
  for (let p = 0; p < ranges.length; p++) {
    const r = ranges[p];
    if (ops.compare(r.end, from) < 0 || ops.compare(r.start, to) > 0) continue;
    eventKeys.push(ops.compare(r.start, from) < 0 ? from : r.start);
    eventCodes.push(p);
    if (ops.compare(r.end, to) < 0) {
      eventKeys.push(ops.next(r.end) as K); // r.end < to, so it has a successor
      eventCodes.push(~p);
    }
  }
  const order = sortedOrder(eventKeys, ops);

  const heap = new Int32Array(ranges.length);
  let heapSize = 0;
  const closed = new Uint8Array(ranges.length);
  const keys: K[] = [from];
  const labels: number[] = [-1];
  let e = 0;
  while (e < order.length) {
    const key = eventKeys[order[e]];
    while (e < order.length && ops.compare(eventKeys[order[e]], key) === 0) {
      const code = eventCodes[order[e]];
      if (code >= 0) heapSize = heapPush(heap, heapSize, code);
      else closed[~code] = 1;
      e++;
    }
    while (heapSize > 0 && closed[heap[0]] === 1) heapSize = heapPop(heap, heapSize);
    const label = heapSize === 0 ? -1 : ranges[heap[0]].id;
    if (ops.compare(key, from) === 0) {
      labels[0] = label;
    } else if (label !== labels[labels.length - 1]) {
      keys.push(key);
      labels.push(label);
    }
  }
  return { keys, labels };
}

/** Event indices ordered by key. */
function sortedOrder<K>(keys: readonly K[], ops: KeyOps<K>): ArrayLike<number> {
  const n = keys.length;
  const uint32 = ops.uint32;
  if (uint32 !== undefined && n <= 1 << 21) {
    // key · 2^21 + index stays below 2^53: exact in a double, sorted natively.
    const packed = new Float64Array(n);
    for (let i = 0; i < n; i++) packed[i] = uint32(keys[i]) * 2097152 + i;
    packed.sort();
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = packed[i] % 2097152;
    return order;
  }
  const order = Array.from(keys.keys());
  order.sort((a, b) => ops.compare(keys[a], keys[b]));
  return order;
}

function heapPush(heap: Int32Array, size: number, value: number): number {
  let i = size;
  heap[i] = value;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent] <= heap[i]) break;
    const t = heap[parent];
    heap[parent] = heap[i];
    heap[i] = t;
    i = parent;
  }
  return size + 1;
}

function heapPop(heap: Int32Array, size: number): number {
  const last = size - 1;
  heap[0] = heap[last];
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let m = i;
    if (l < last && heap[l] < heap[m]) m = l;
    if (r < last && heap[r] < heap[m]) m = r;
    if (m === i) break;
    const t = heap[m];
    heap[m] = heap[i];
    heap[i] = t;
    i = m;
  }
  return last;
}
