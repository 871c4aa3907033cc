// The Merkle tree over record hashes: RFC 6962 (Certificate Transparency) Merkle Tree Hash.
//   leaf  = SHA-256(0x00 || recordHash)        (recordHash: the record's 32 raw hash bytes)
//   node  = SHA-256(0x01 || left || right)
//   MTH() = SHA-256("") for the empty tree; MTH(n leaves) splits at the largest power of 2 < n.
// The tree spans every record since seq 1. A writer keeps only its "frontier": the roots of the
// perfect subtrees the first n leaves decompose into (one per set bit of n, largest first), from
// which the root follows by folding right to left. Checkpoints carry the frontier, so a verifier
// can resume from a signed checkpoint after retention deleted the records before it.
import { hexWrite, latin1Write } from './buffer-write.js';
import { sha256, sha256Latin1 } from './sha256.js';
import { sha256Short, SHORT_MAX } from './sha256-short.js';

export const EMPTY_ROOT: Buffer = sha256('');

/** Nodes a packed frontier has room for (a tree of fewer than 2^64 leaves). */
export const PACKED_NODES = 64;

export function leafHash(recordHash: Uint8Array): Buffer {
  if (1 + recordHash.length <= SHORT_MAX) return sha256Short(0, recordHash);
  const input = Buffer.allocUnsafe(1 + recordHash.length);
  input[0] = 0;
  input.set(recordHash, 1);
  return sha256(input);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (1 + left.length + right.length <= SHORT_MAX) return sha256Short(1, left, right);
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return sha256(input);
}

export function popcount(n: number): number {
  let c = 0;
  for (let v = n; v > 0; v = Math.floor(v / 2)) c += v % 2;
  return c;
}

// The frontier's hashes are kept as latin1 strings (one character per byte) and hashed by
// node:crypto from two fixed scratch buffers: crypto.hash returns a string several times faster
// than a Buffer, and a leaf or node then costs one native call (about 0.2 µs; the JavaScript
// sha256Short took 0.5 to 1 µs).
const LEAF_INPUT = Buffer.alloc(1 + 32);
const NODE_INPUT = Buffer.alloc(1 + 32 + 32);
NODE_INPUT[0] = 1;

function leafOf(recordHash: Uint8Array): string {
  if (recordHash.length !== 32) return sha256Latin1(Buffer.concat([LEAF_PREFIX, recordHash]));
  LEAF_INPUT.set(recordHash, 1);
  return sha256Latin1(LEAF_INPUT);
}

function leafOfHex(recordHash: string): string {
  if (recordHash.length === 64 && hexWrite(LEAF_INPUT, recordHash, 1, 32) === 32) return sha256Latin1(LEAF_INPUT);
  return leafOf(Buffer.from(recordHash, 'hex'));
}

function nodeOf(left: string, right: string): string {
  if (left.length !== 32 || right.length !== 32) return sha256Latin1(Buffer.concat([NODE_PREFIX, Buffer.from(left, 'latin1'), Buffer.from(right, 'latin1')]));
  latin1Write(NODE_INPUT, left, 1, 32);
  latin1Write(NODE_INPUT, right, 33, 32);
  return sha256Latin1(NODE_INPUT);
}

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

export class MerkleFrontier {
  private constructor(
    private count: number,
    /** latin1 strings of 32 characters (bytes). */
    private readonly nodes: string[],
  ) {}

  static empty(): MerkleFrontier {
    return new MerkleFrontier(0, []);
  }

  /** From a checkpoint's size and frontier; throws when the frontier does not fit the size. */
  static from(size: number, frontier: readonly string[]): MerkleFrontier {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError('tree size must be a non-negative integer');
    if (frontier.length !== popcount(size)) throw new RangeError(`a tree of ${size} leaves has ${popcount(size)} frontier hashes`);
    return new MerkleFrontier(
      size,
      frontier.map((h) => Buffer.from(h, 'hex').toString('latin1')),
    );
  }

  get size(): number {
    return this.count;
  }

  /** Adds the next record's hash as a leaf. */
  append(recordHash: Uint8Array): void {
    this.appendLeaf(leafOf(recordHash));
  }

  /** append() of a record hash in hex (as the writer has it). */
  appendHex(recordHash: string): void {
    this.appendLeaf(leafOfHex(recordHash));
  }

  private appendLeaf(leaf: string): void {
    let h = leaf;
    for (let s = this.count; s % 2 === 1; s = (s - 1) / 2) h = nodeOf(this.nodes.pop()!, h);
    this.nodes.push(h);
    this.count += 1;
  }

  root(): Buffer {
    if (this.nodes.length === 0) return EMPTY_ROOT;
    let r = this.nodes[this.nodes.length - 1]!;
    for (let i = this.nodes.length - 2; i >= 0; i--) r = nodeOf(this.nodes[i]!, r);
    return Buffer.from(r, 'latin1');
  }

  hexes(): string[] {
    return this.nodes.map((n) => Buffer.from(n, 'latin1').toString('hex'));
  }

  clone(): MerkleFrontier {
    return new MerkleFrontier(this.count, [...this.nodes]);
  }

  /** The frontier as raw bytes, 32 per node, largest subtree first, with room for PACKED_NODES:
   * what native code extends in place (native-writer.ts). */
  packed(): Buffer {
    const out = Buffer.alloc(PACKED_NODES * 32);
    for (let i = 0; i < this.nodes.length; i++) latin1Write(out, this.nodes[i]!, 32 * i, 32);
    return out;
  }

  /** The frontier of `size` leaves from packed() bytes (the first popcount(size) nodes). */
  static fromPacked(size: number, packed: Buffer): MerkleFrontier {
    const nodes = popcount(size);
    if (packed.length < 32 * nodes) throw new RangeError(`a tree of ${size} leaves has ${nodes} frontier hashes`);
    return new MerkleFrontier(
      size,
      Array.from({ length: nodes }, (_, i) => packed.toString('latin1', 32 * i, 32 * (i + 1))),
    );
  }
}
