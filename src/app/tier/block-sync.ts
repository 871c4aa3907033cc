// Throttle blocks across the gateway tier, a pure core with the clock passed in. Each gateway
// process keeps its own Throttle (threat/protection/throttle.ts): it counts the failures it
// sees and starts blocks. This core compares the throttle's blocks in force with the last list
// it knew and says what changed: a new or longer block goes to the others, who adopt it into
// their own throttle (step 7 refuses there too, the API lists and unblocks it there too); a
// block that vanished before its end was lifted (the API's unblock, the policy turned off) and
// the others lift it too. A block that ran out needs no message: it runs out everywhere.
import type { Block } from '../../threat/protection/throttle.js';

/** What BlockSync needs of a Throttle. */
export interface ThrottleBlocks {
  list(server: string | null, nowMs: number): Block[];
  adopt(block: Block, nowMs: number): boolean;
  unblock(server: string, id: string): Block | null;
}

export type BlockMessage = { readonly op: 'block'; readonly block: Block } | { readonly op: 'unblock'; readonly server: string; readonly id: string };

export class BlockSync {
  /** The blocks in force as of the last look, this process's and the ones it adopted. */
  private known = new Map<string, Block>();

  constructor(private readonly throttle: ThrottleBlocks) {}

  /** What to tell the others now. */
  changes(nowMs: number): BlockMessage[] {
    const current = new Map(this.throttle.list(null, nowMs).map((b) => [b.id, b]));
    const out: BlockMessage[] = [];
    for (const [id, b] of current) {
      const was = this.known.get(id);
      if (!was || was.until !== b.until) out.push({ op: 'block', block: b });
    }
    for (const [id, b] of this.known) if (!current.has(id) && b.until > nowMs) out.push({ op: 'unblock', server: b.server, id });
    this.known = current;
    return out;
  }

  /** Every block in force, for a gateway that (re)joined the tier and missed them. */
  all(nowMs: number): BlockMessage[] {
    return this.throttle.list(null, nowMs).map((block) => ({ op: 'block' as const, block }));
  }

  /** What another gateway said. */
  receive(m: BlockMessage, nowMs: number): void {
    if (m.op === 'block') {
      if (!validBlock(m.block)) return;
      // Known now, so the next look does not send it back (a longer block of our own stays, and
      // the others had it when it started).
      if (this.throttle.adopt(m.block, nowMs)) this.known.set(m.block.id, m.block);
      return;
    }
    if (typeof m.server !== 'string' || typeof m.id !== 'string') return;
    this.throttle.unblock(m.server, m.id);
    this.known.delete(m.id);
  }
}

function validBlock(b: unknown): b is Block {
  if (!b || typeof b !== 'object') return false;
  const x = b as Record<string, unknown>;
  return (
    typeof x.id === 'string' &&
    typeof x.server === 'string' &&
    (x.scope === 'address' || x.scope === 'user-address') &&
    typeof x.address === 'string' &&
    (x.user === null || typeof x.user === 'string') &&
    typeof x.failures === 'number' &&
    typeof x.since === 'number' &&
    typeof x.until === 'number'
  );
}
