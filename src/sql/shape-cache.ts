// The one pass over a statement text that every consumer shares: lexed once into its shape key
// (lexer.ts), and one cache keyed by shape in which each consumer (a server's audit classifier,
// its SQL-injection detector) keeps what it derived under its own slot. The statement audit and
// the SQL watch see the same text one after the other, so the last text's shape is remembered:
// the second consumer does not lex it again.

import { keySegments, lexShape, sameShape, type Lexed } from './lexer.js';
import { LruCache } from './lru.js';

/** A consumer's place in the cache entries (compared by identity). */
export class ShapeSlot<V> {
  /** Only for the type of the values kept under this slot. */
  declare private readonly _value: V;
  constructor(readonly name: string) {}
}

interface Kept {
  value: unknown;
  bytes: number;
}

type Entry = Map<ShapeSlot<unknown>, Kept>;

/** Texts lexed by every cache of the process: read by the unit test that counts passes. */
export const lexCounters = { texts: 0 };

export class ShapeCache {
  private readonly lru: LruCache<Entry>;
  private lastText: string | null = null;
  private lastLexed: Lexed | null = null;
  /** keySegments of lastLexed when it has literals, else null. */
  private segments: string[] | null = null;
  /** The key of the last entry found, and that entry (see get). */
  private lastKey: string | null = null;
  private lastEntry: Entry | undefined = undefined;

  constructor(maxEntries: number, maxBytes: number) {
    this.lru = new LruCache(maxEntries, maxBytes);
  }

  get size(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.bytes;
  }

  /** The text's shape (null when the lexer cannot follow it); the last text is not lexed again,
   * and a text of the last shape with literals is read as such (sameShape: its literals only). */
  shape(text: string): Lexed | null {
    if (text === this.lastText) return this.lastLexed;
    lexCounters.texts++;
    let lexed = this.segments === null ? null : sameShape(text, this.lastLexed!, this.segments);
    if (lexed === null) {
      lexed = lexShape(text);
      this.segments = lexed !== null && lexed.keyPos.length > 0 ? keySegments(lexed) : null;
    }
    this.lastText = text;
    this.lastLexed = lexed;
    return lexed;
  }

  /** Entries and bytes kept for one slot (walks the cache: for statistics only). */
  held(slot: ShapeSlot<unknown>): { entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (const entry of this.lru.values()) {
      const kept = entry.get(slot);
      if (kept === undefined) continue;
      entries++;
      bytes += kept.bytes;
    }
    return { entries, bytes };
  }

  get<V>(key: string, slot: ShapeSlot<V>): V | undefined {
    // Runs of one shape (a client repeating a statement with other values) are common: the last
    // key found is compared before the key is hashed. set(), the only place entries change or go,
    // marks it used first (it may not have been since) and forgets it.
    let entry: Entry | undefined;
    if (key === this.lastKey) entry = this.lastEntry;
    else {
      entry = this.lru.get(key);
      if (entry !== undefined) {
        this.lastKey = key;
        this.lastEntry = entry;
      }
    }
    return entry?.get(slot)?.value as V | undefined;
  }

  /** Keeps `value` for `slot` under `key`; `bytes` estimates what it holds (the key is counted once). */
  set<V>(key: string, slot: ShapeSlot<V>, value: V, bytes: number): void {
    if (this.lastKey !== null) this.lru.get(this.lastKey);
    this.lastKey = null;
    this.lastEntry = undefined;
    let entry = this.lru.get(key);
    if (entry === undefined) entry = new Map();
    entry.set(slot, { value, bytes });
    let total = key.length * 2 + 32;
    for (const kept of entry.values()) total += kept.bytes;
    this.lru.set(key, entry, total);
  }
}

/** The process's one shape cache: every classifier and detector without bounds of its own. */
export const sharedShapes = new ShapeCache(20_000, 32 * 1024 * 1024);
