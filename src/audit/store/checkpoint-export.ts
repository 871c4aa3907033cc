// The portable form of a checkpoint, for a witness off the host: the checkpoint as written, and
// the signer's public key (SPKI PEM) with its id. A third party pins the key id (or the key) it
// trusts and checks the signature with verifyExportedCheckpoint; it needs nothing but this JSON.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { checkpointSignatureValid, checkpointTreeConsistent, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { keyIdOf, publicKeyPem, toPublicKey } from './signing-key.js';

export const EXPORT_FORMAT = 'pgwarden-audit-checkpoint/1';

export interface ExportedCheckpoint {
  readonly format: typeof EXPORT_FORMAT;
  readonly checkpoint: Checkpoint;
  readonly publicKey: string;
  readonly keyId: string;
}

export function exportCheckpoint(checkpoint: Checkpoint, publicKey: KeyObject | string): ExportedCheckpoint {
  const key = toPublicKey(publicKey);
  return { format: EXPORT_FORMAT, checkpoint, publicKey: publicKeyPem(key), keyId: keyIdOf(key) };
}

export type ExportedCheckpointCheck = { readonly ok: true; readonly checkpoint: Checkpoint } | { readonly ok: false; readonly message: string };

/**
 * Checks an exported checkpoint (as a value or JSON text): its form, that it was signed by
 * `trusted` (a public key, or a key id to match the embedded key against), and that its Merkle
 * frontier folds to its root.
 */
export function verifyExportedCheckpoint(exported: unknown, trusted: KeyObject | string | { readonly keyId: string }): ExportedCheckpointCheck {
  let value = exported;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return { ok: false, message: 'not JSON' };
    }
  }
  if (typeof value !== 'object' || value === null) return { ok: false, message: 'not a JSON object' };
  const e = value as Record<string, unknown>;
  if (e.format !== EXPORT_FORMAT) return { ok: false, message: `format is not ${EXPORT_FORMAT}` };
  const parsed = parseCheckpoint(e.checkpoint);
  if (!parsed.ok) return parsed;
  let key: KeyObject;
  try {
    if (typeof trusted === 'object' && 'keyId' in trusted) {
      if (typeof e.publicKey !== 'string') return { ok: false, message: 'no public key' };
      key = toPublicKey(createPublicKey(e.publicKey));
      if (keyIdOf(key) !== trusted.keyId) return { ok: false, message: 'signed by a key other than the trusted one' };
    } else {
      key = toPublicKey(trusted);
    }
  } catch {
    return { ok: false, message: 'not an Ed25519 public key' };
  }
  const cp = parsed.checkpoint;
  if (cp.keyId !== keyIdOf(key)) return { ok: false, message: 'signed by a key other than the trusted one' };
  if (!checkpointSignatureValid(cp, key)) return { ok: false, message: 'signature does not verify' };
  if (!checkpointTreeConsistent(cp)) return { ok: false, message: 'frontier does not fold to the root' };
  return { ok: true, checkpoint: cp };
}
