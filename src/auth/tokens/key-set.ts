// A JWKS document turned into verification keys, imported once per (key, algorithm) so the hot
// path is a map lookup. Only public signing keys that fit an allowed algorithm are kept: RSA
// (>= 2048 bits) for RS256/PS256, EC P-256 for ES256. Keys for encryption, private keys, other
// types and curves are skipped; a document that is not a JWKS, or has too many keys, is refused.

import { importJWK, type CryptoKey, type JWK } from 'jose';
import { ALLOWED_ALGORITHMS, isAllowedAlgorithm, type AllowedAlgorithm } from './algorithms.js';

type KeysByAlgorithm = Map<AllowedAlgorithm, CryptoKey>;

export interface KeySet {
  /** Keys with a `kid`, by kid then algorithm (the first key wins for a repeated kid). */
  readonly byKid: ReadonlyMap<string, KeysByAlgorithm>;
  /** Every key for an algorithm, with or without a kid: for tokens that carry no kid. */
  readonly byAlgorithm: ReadonlyMap<AllowedAlgorithm, readonly CryptoKey[]>;
  /** How many usable keys the document held. */
  readonly size: number;
}

const MIN_RSA_BITS = 2048;

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** The public part only, with the algorithms it may verify; null when the key is not usable. */
function publicSigningKey(jwk: Record<string, unknown>): { jwk: JWK; algorithms: AllowedAlgorithm[] } | null {
  if (jwk['use'] !== undefined && jwk['use'] !== 'sig') return null;
  const ops = jwk['key_ops'];
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) return null;
  if (jwk['d'] !== undefined) return null; // a private key has no place in a JWKS
  const alg = jwk['alg'];
  if (alg !== undefined && !isAllowedAlgorithm(alg)) return null;
  let candidates: AllowedAlgorithm[];
  let material: JWK;
  if (jwk['kty'] === 'RSA') {
    const n = text(jwk['n']);
    const e = text(jwk['e']);
    if (n === undefined || e === undefined) return null;
    material = { kty: 'RSA', n, e };
    candidates = ['RS256', 'PS256'];
  } else if (jwk['kty'] === 'EC' && jwk['crv'] === 'P-256') {
    const x = text(jwk['x']);
    const y = text(jwk['y']);
    if (x === undefined || y === undefined) return null;
    material = { kty: 'EC', crv: 'P-256', x, y };
    candidates = ['ES256'];
  } else {
    return null;
  }
  const algorithms = alg === undefined ? candidates : candidates.filter((c) => c === alg);
  return algorithms.length === 0 ? null : { jwk: material, algorithms };
}

async function importFor(jwk: JWK, alg: AllowedAlgorithm): Promise<CryptoKey | null> {
  try {
    const key = await importJWK(jwk, alg);
    if (key instanceof Uint8Array) return null;
    const bits = (key.algorithm as { modulusLength?: number }).modulusLength;
    if (bits !== undefined && bits < MIN_RSA_BITS) return null;
    return key;
  } catch {
    return null; // not a valid key: skipped like any other unusable entry
  }
}

/** Reads a JWKS document; throws a plain Error naming the problem when it is not acceptable. */
export async function readKeySet(document: unknown, maxKeys: number): Promise<KeySet> {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { keys?: unknown }).keys)) {
    throw new Error('JWKS is not an object with a "keys" array');
  }
  const entries = (document as { keys: unknown[] }).keys;
  if (entries.length > maxKeys) throw new Error(`JWKS has ${entries.length} keys, more than ${maxKeys}`);
  const byKid = new Map<string, KeysByAlgorithm>();
  const byAlgorithm = new Map<AllowedAlgorithm, CryptoKey[]>(ALLOWED_ALGORITHMS.map((a) => [a, []]));
  let size = 0;
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) continue;
    const usable = publicSigningKey(entry as Record<string, unknown>);
    if (usable === null) continue;
    const kid = (entry as { kid?: unknown }).kid;
    if (kid !== undefined && typeof kid !== 'string') continue;
    let imported = 0;
    for (const alg of usable.algorithms) {
      const key = await importFor(usable.jwk, alg);
      if (key === null) continue;
      imported++;
      byAlgorithm.get(alg)!.push(key);
      if (kid === undefined) continue;
      let forKid = byKid.get(kid);
      if (forKid === undefined) byKid.set(kid, (forKid = new Map()));
      if (!forKid.has(alg)) forKid.set(alg, key);
    }
    if (imported > 0) size++;
  }
  return { byKid, byAlgorithm, size };
}
