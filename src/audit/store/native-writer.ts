// What the writer thread does in native code when the addon is built and loads there: the hash
// chain and Merkle frontier of a batch (native/relay/src/chain.rs: one call per batch instead of
// two or three hashes, a line and a few string conversions per record in JavaScript, about 4 µs a
// record there) and a sealed segment's frames (seal.rs: AES-GCM into a kept buffer instead of a
// cipher object and two new buffers a frame, about 50 µs a frame in JavaScript). The JavaScript
// paths (record-lines.ts, merkle.ts, seal.ts) make the same bytes and stay the fallback.
import { loadNativeAddon } from '../../host/native-addon.js';

export interface NativeWriter {
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
  /** A sealed segment's frame of `data` at file `offset` with the file's key and a nonce used for
   * no other frame of the file (seal.ts's frame, byte for byte), into `out`; returns its length. */
  sealFrame(key: Buffer, nonce: Buffer, offset: number, data: Uint8Array, out: Buffer): number;
}

/** Bytes a record line takes beyond its event, at most (chain.rs LINE_OVERHEAD). */
export const LINE_OVERHEAD = 216;

let loaded: NativeWriter | null | undefined;

/** The native writer code, or null when the addon is not built or is an older one without it. */
export function nativeWriter(): NativeWriter | null {
  if (loaded === undefined) {
    const r = loadNativeAddon<Partial<NativeWriter>>();
    loaded = r.addon && typeof r.addon.chainRecords === 'function' && typeof r.addon.sealFrame === 'function' ? (r.addon as NativeWriter) : null;
  }
  return loaded;
}
