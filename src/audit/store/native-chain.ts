// The writer's hash chain and Merkle frontier in native code (native/relay/src/chain.rs), when the
// addon is built and loads in the writer's thread: one call per batch instead of two or three
// hashes, a line and a few string conversions per record in JavaScript (about 4 µs per record
// there). The JavaScript path (record-lines.ts, merkle.ts) makes the same bytes and stays the
// fallback.
import { loadNativeAddon } from '../../host/native-addon.js';

export interface ChainAddon {
  /** A batch's lines into `lines` (room for the events and LINE_OVERHEAD per record; returns
   * their length) and hashes into `hashes` (32 bytes each); `frontier` (packed, merkle.ts) is
   * extended in place. Throws on what is not a batch (nothing is changed then). */
  chainRecords(
    events: Buffer,
    ends: Uint32Array,
    timesMs: Float64Array,
    firstSeq: number,
    prev: Buffer,
    frontier: Buffer,
    size: number,
    lines: Buffer,
    hashes: Buffer,
  ): number;
}

/** Bytes a record line takes beyond its event, at most (chain.rs LINE_OVERHEAD). */
export const LINE_OVERHEAD = 216;

/** Which hash chain a store's writer uses: native when it loads (the default), or JavaScript. */
export type ChainChoice = 'native' | 'js';

let loaded: ChainAddon | null | undefined;

/** The native chain, or null when the addon is not built or is an older one without it. */
export function nativeChain(): ChainAddon | null {
  if (loaded === undefined) {
    const r = loadNativeAddon<Partial<ChainAddon>>();
    loaded = r.addon && typeof r.addon.chainRecords === 'function' ? (r.addon as ChainAddon) : null;
  }
  return loaded;
}
