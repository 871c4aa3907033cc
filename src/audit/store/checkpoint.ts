// Signed checkpoints. A checkpoint commits to the first `size` records: the RFC 6962 Merkle root
// over their hashes, the frontier that root folds from, and the hash of record `size`. Checkpoints
// form their own chain: `prev` is the SHA-256 of the previous checkpoint's line (without "\n"),
// `index` counts from 0 (the genesis checkpoint, size 0). The signature is Ed25519 over the UTF-8
// canonical JSON (RFC 8785) of every field but `sig`; the line is the canonical JSON of all fields.
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { MerkleFrontier, popcount } from './merkle.js';

export interface Checkpoint {
  readonly v: 1;
  readonly index: number;
  /** Records covered: seq 1 ..= size. */
  readonly size: number;
  /** RFC 6962 Merkle tree hash over the hashes of records 1 ..= size, hex. */
  readonly root: string;
  /** Roots of the perfect subtrees of that tree, largest first (one per set bit of size), hex. */
  readonly frontier: readonly string[];
  /** Hash of record `size` (64 zeros when size is 0), hex. */
  readonly lastHash: string;
  /** SHA-256 of the previous checkpoint's line, hex (64 zeros for index 0). */
  readonly prev: string;
  /** When it was made: ISO 8601 UTC with milliseconds. */
  readonly time: string;
  /** Hex SHA-256 of the signer's SPKI DER public key. */
  readonly keyId: string;
  /** Ed25519 (or, in FIPS mode, ECDSA P-256 r||s) signature, base64: 64 bytes. */
  readonly sig: string;
}

export type CheckpointBody = Omit<Checkpoint, 'sig'>;

/** Ed25519, or ECDSA P-256 with SHA-256 (the FIPS profile) in the 64-byte r||s encoding. */
const ecdsa = (key: KeyObject) => key.asymmetricKeyType === 'ec';

export function signCheckpoint(body: CheckpointBody, privateKey: KeyObject): Checkpoint {
  const data = Buffer.from(canonicalJson(body));
  const sig = (ecdsa(privateKey) ? sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) : sign(null, data, privateKey)).toString('base64');
  return { ...body, sig };
}

export function checkpointSignatureValid(cp: Checkpoint, publicKey: KeyObject): boolean {
  const { sig, ...body } = cp;
  const signature = Buffer.from(sig, 'base64');
  if (signature.length !== 64 || signature.toString('base64') !== sig) return false;
  const data = Buffer.from(canonicalJson(body));
  return ecdsa(publicKey) ? verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature) : verify(null, data, publicKey, signature);
}

/** The checkpoint's line in a checkpoint file, without "\n". */
export function checkpointText(cp: Checkpoint): string {
  return canonicalJson(cp);
}

export function checkpointHash(cp: Checkpoint): string {
  return createHash('sha256').update(checkpointText(cp)).digest('hex');
}

/** The frontier, size and root agree with each other. */
export function checkpointTreeConsistent(cp: Checkpoint): boolean {
  try {
    return MerkleFrontier.from(cp.size, cp.frontier).root().toString('hex') === cp.root;
  } catch {
    return false;
  }
}

export type ParsedCheckpoint = { readonly ok: true; readonly checkpoint: Checkpoint } | { readonly ok: false; readonly message: string };

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const FIELDS = ['frontier', 'index', 'keyId', 'lastHash', 'prev', 'root', 'sig', 'size', 'time', 'v'];

/** Parses a checkpoint from a line (without "\n") or a value; the line must be canonical. */
export function parseCheckpoint(input: string | unknown): ParsedCheckpoint {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      return { ok: false, message: 'not JSON' };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, message: 'not a JSON object' };
  const c = value as Record<string, unknown>;
  if (Object.keys(c).sort().join() !== FIELDS.join()) return { ok: false, message: `fields must be exactly ${FIELDS.join(', ')}` };
  if (c.v !== 1) return { ok: false, message: 'unknown version' };
  if (!Number.isSafeInteger(c.index) || (c.index as number) < 0) return { ok: false, message: 'index is not a non-negative integer' };
  if (!Number.isSafeInteger(c.size) || (c.size as number) < 0) return { ok: false, message: 'size is not a non-negative integer' };
  for (const f of ['root', 'lastHash', 'prev', 'keyId'] as const) {
    if (typeof c[f] !== 'string' || !HEX64.test(c[f] as string)) return { ok: false, message: `${f} is not 64 lowercase hex digits` };
  }
  const frontier = c.frontier;
  if (!Array.isArray(frontier) || !frontier.every((h) => typeof h === 'string' && HEX64.test(h))) {
    return { ok: false, message: 'frontier is not a list of hashes' };
  }
  if (frontier.length !== popcount(c.size as number)) return { ok: false, message: 'frontier does not fit the size' };
  if (typeof c.time !== 'string' || !ISO_MS.test(c.time)) return { ok: false, message: 'time is not ISO 8601 UTC with milliseconds' };
  if (typeof c.sig !== 'string') return { ok: false, message: 'sig is not a string' };
  const checkpoint = c as unknown as Checkpoint;
  if (typeof input === 'string' && checkpointText(checkpoint) !== input) return { ok: false, message: 'line is not in canonical form' };
  return { ok: true, checkpoint };
}
