// The throttle's blocks as another gateway process sees them (`up --gateway-workers N`): the
// platform process counts every process's failed logins in its one Throttle and sends the
// blocks in force whenever they change; a gateway process checks step 7 against this copy, with
// the same keys, so a block applies on every process.
import type { Block } from './throttle.js';
import { throttleClient } from './client-key.js';

export class BlockMirror {
  private byKey = new Map<string, Block>();

  /** The blocks in force now, as the platform process listed them. */
  replace(blocks: readonly Block[]): void {
    this.byKey = new Map(blocks.map((b) => [keyOf(b.server, b.address, b.user), b]));
  }

  /** A block in force for this attempt, or null (the pair first, as Throttle.check). */
  check(server: string, address: string, user: string, nowMs: number): Block | null {
    const client = throttleClient(address);
    return this.active(keyOf(server, client, user), nowMs) ?? this.active(keyOf(server, client, null), nowMs);
  }

  get size(): number {
    return this.byKey.size;
  }

  private active(key: string, nowMs: number): Block | null {
    const b = this.byKey.get(key);
    return b && b.until > nowMs ? b : null;
  }
}

function keyOf(server: string, address: string, user: string | null): string {
  return `${server}\u0000${address}\u0000${user ?? ''}`;
}
