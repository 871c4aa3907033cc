// A CancelRequest another gateway of the tier must forward, as it travels through the catalog.
// The secret never goes there in clear (the catalog may log statements and their parameters):
// it is sealed with AES-256-GCM under the tier key, a key every gateway of the platform derives
// from the platform's root key, bound to the process id and the time it was sent. The gateway
// holding the session opens it and looks the key up as for a local CancelRequest (constant-time
// comparison in gateway/cancel-keys.ts). Why sealing rather than an HMAC of the secret: the
// receiver needs no new lookup by MAC in the gateway, and a forged or altered message fails to
// open; a message seen once is refused again (replay), and one older than the window is stale.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const NONCE = 12;
const TAG = 16;
/** How old a sealed cancel may be when it arrives (clocks of the tier's hosts differ a little). */
export const CANCEL_WINDOW_MS = 30_000;

export interface SealedCancel {
  readonly pid: number;
  /** Milliseconds since the epoch, when it was sent. */
  readonly t: number;
  /** base64url: nonce, ciphertext, tag. */
  readonly box: string;
}

function aad(pid: number, t: number): Buffer {
  return Buffer.from(`pgwarden/tier/cancel/v1/${pid}/${t}`);
}

export function sealCancel(key: Buffer, pid: number, secret: Buffer, nowMs: number): SealedCancel {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
  cipher.setAAD(aad(pid, nowMs));
  const box = Buffer.concat([nonce, cipher.update(secret), cipher.final(), cipher.getAuthTag()]).toString('base64url');
  return { pid, t: nowMs, box };
}

/** The secret, or null: not sealed under this key, altered, stale or seen before. */
export class CancelOpener {
  private readonly seen = new Map<string, number>();

  constructor(private readonly key: Buffer) {}

  open(m: SealedCancel, nowMs: number): Buffer | null {
    if (!Number.isInteger(m.pid) || !Number.isFinite(m.t) || typeof m.box !== 'string') return null;
    if (Math.abs(nowMs - m.t) > CANCEL_WINDOW_MS) return null;
    this.forgetOld(nowMs);
    if (this.seen.has(m.box)) return null;
    const raw = Buffer.from(m.box, 'base64url');
    if (raw.length <= NONCE + TAG) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, NONCE), { authTagLength: TAG });
      decipher.setAAD(aad(m.pid, m.t));
      decipher.setAuthTag(raw.subarray(raw.length - TAG));
      const secret = Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]);
      this.seen.set(m.box, m.t);
      return secret;
    } catch {
      return null;
    }
  }

  private forgetOld(nowMs: number): void {
    for (const [box, t] of this.seen) if (Math.abs(nowMs - t) > CANCEL_WINDOW_MS) this.seen.delete(box);
  }
}
