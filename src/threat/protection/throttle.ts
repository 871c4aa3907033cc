// Progressive throttling of failed logins (SPEC.md §3 step 7, §6), a pure state machine with
// the clock passed in. Two keys only: the address, and the (user, address) pair, where an IPv6
// "address" is its /64 (client-key.ts: an attacker cannot rotate through one network). There is no
// per-user key, so knowing a role's name is not enough to lock its owner out: a user still logs
// in from an address that has not failed. After `threshold` failures within the window a key
// is blocked for baseBlock × 2^(blocks so far), capped; the failure count then starts again.
import { createHash } from 'node:crypto';
import { BoundedMap, SlidingWindow } from '../bounded-map.js';
import type { AutoProtection } from '../policy.js';
import { throttleClient } from './client-key.js';

export type BlockScope = 'address' | 'user-address';

export interface Block {
  /** Stable id for the API: a hash of server, scope, address and user. */
  readonly id: string;
  readonly server: string;
  readonly scope: BlockScope;
  /** The client blocked: an IPv4 address, or an IPv6 /64 ("2001:db8:1:2::/64"). */
  readonly address: string;
  readonly user: string | null;
  /** Failures that led to this block and the blocks before it in the window. */
  readonly failures: number;
  readonly since: number;
  readonly until: number;
}

interface KeyState {
  readonly window: SlidingWindow;
  failures: number;
  blocks: number;
  lastBlockEnd: number;
  block: Block | null;
}

export class Throttle {
  private readonly keys = new BoundedMap<string, KeyState>(200_000);
  /** The keys whose state holds a block (in force or ended not long ago): what list() and
   * unblock() read, instead of every key (the gateway processes and the tier list the blocks
   * several times a second, and an attack from many addresses fills `keys`). */
  private readonly withBlock = new Map<string, KeyState>();

  /** A block in force for this attempt, or null. The pair is checked first (its own error
   * is the same text: the client learns nothing about which key tripped). */
  check(server: string, address: string, user: string, nowMs: number): Block | null {
    address = throttleClient(address);
    return this.active(keyOf(server, 'user-address', address, user), nowMs) ?? this.active(keyOf(server, 'address', address, null), nowMs);
  }

  /** Records a failed login; returns the blocks it started (at most one per key). */
  failure(server: string, address: string, user: string, settings: AutoProtection, nowMs: number): Block[] {
    address = throttleClient(address);
    const started: Block[] = [];
    const pair = this.count(server, 'user-address', address, user, settings.userAddressFailures, settings, nowMs);
    if (pair) started.push(pair);
    const addr = this.count(server, 'address', address, null, settings.addressFailures, settings, nowMs);
    if (addr) started.push(addr);
    return started;
  }

  /** A successful login clears the pair's failures; the address keeps its count (an attacker
   * with one valid account must not be able to reset the counter for the others). A block in
   * force stays: with several gateway processes a login can succeed on one before the block
   * reached it, and that must not lift the block. */
  success(server: string, address: string, user: string, nowMs = Date.now()): void {
    const key = keyOf(server, 'user-address', throttleClient(address), user);
    if (this.active(key, nowMs)) return;
    this.keys.delete(key);
    this.withBlock.delete(key);
  }

  list(server: string | null, nowMs: number): Block[] {
    const out: Block[] = [];
    for (const [k, s] of this.withBlock) {
      // Gone from `keys` (evicted, forgotten) or its block over: no longer listed.
      if (this.keys.get(k) !== s || !s.block || s.block.until <= nowMs) {
        this.withBlock.delete(k);
        continue;
      }
      if (server === null || s.block.server === server) out.push(s.block);
    }
    return out.sort((a, b) => a.since - b.since);
  }

  /** Lifts a block and forgets the key's history. */
  unblock(server: string, id: string): Block | null {
    for (const [k, s] of this.withBlock) {
      if (s.block?.id === id && s.block.server === server && this.keys.get(k) === s) {
        const b = s.block;
        this.keys.delete(k);
        this.withBlock.delete(k);
        return b;
      }
    }
    return null;
  }

  /** A block another gateway process of the tier started (or lifted and started again): put in
   * force here too, under the same key, so check(), list() and unblock() see it as their own and
   * a success here does not lift it. An older copy never shortens a block in force. */
  adopt(block: Block, nowMs: number): boolean {
    if (block.until <= nowMs) return false;
    const key = keyOf(block.server, block.scope, block.address, block.user);
    if (blockId(key) !== block.id) return false; // not a block of this key: refused, not trusted
    const s = this.keys.upsert(key, () => ({ window: new SlidingWindow(), failures: 0, blocks: 0, lastBlockEnd: 0, block: null }));
    if (s.block && s.block.until >= block.until) return false;
    s.block = block;
    this.withBlock.set(key, s);
    s.blocks = Math.max(s.blocks, 1);
    s.lastBlockEnd = Math.max(s.lastBlockEnd, block.until);
    s.window.reset();
    return true;
  }

  /** Forgets everything about a server (policy turned off, server deleted). */
  forgetServer(server: string): void {
    for (const [k, s] of [...this.keys.entries()]) {
      if (k.startsWith(`${server}\u0000`) || s.block?.server === server) {
        this.keys.delete(k);
        this.withBlock.delete(k);
      }
    }
  }

  private active(key: string, nowMs: number): Block | null {
    const s = this.keys.get(key);
    return s?.block && s.block.until > nowMs ? s.block : null;
  }

  private count(
    server: string,
    scope: BlockScope,
    address: string,
    user: string | null,
    threshold: number,
    settings: AutoProtection,
    nowMs: number,
  ): Block | null {
    const key = keyOf(server, scope, address, user);
    const windowMs = settings.windowSeconds * 1000;
    const s = this.keys.upsert(key, () => ({ window: new SlidingWindow(), failures: 0, blocks: 0, lastBlockEnd: 0, block: null }));
    // Blocks are remembered for a window after the last one ended; then the key starts over.
    if (s.blocks > 0 && nowMs - s.lastBlockEnd > windowMs) s.blocks = 0;
    s.failures++;
    const n = s.window.add(nowMs, windowMs);
    if (n < threshold || (s.block && s.block.until > nowMs)) return null;
    const seconds = Math.min(settings.baseBlockSeconds * 2 ** s.blocks, settings.maxBlockSeconds);
    s.blocks++;
    s.window.reset();
    s.lastBlockEnd = nowMs + seconds * 1000;
    s.block = { id: blockId(key), server, scope, address, user, failures: s.failures, since: nowMs, until: nowMs + seconds * 1000 };
    this.withBlock.set(key, s);
    return s.block;
  }
}

function keyOf(server: string, scope: BlockScope, address: string, user: string | null): string {
  return `${server}\u0000${scope}\u0000${address}\u0000${user ?? ''}`;
}

function blockId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}
