// Webhook signatures. Every request carries
//   X-Pgwarden-Timestamp: <unix seconds>
//   X-Pgwarden-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
// where the secret is the webhook's secret as UTF-8 and the raw body is the exact bytes received.
//
// How a receiver verifies (verifyWebhookSignature does all of it):
//   1. Read the raw body bytes before any JSON parsing (re-serialized JSON will not match).
//   2. Compute HMAC-SHA256 with the shared secret over the timestamp header, a ".", and the body.
//   3. Compare with the hex after "sha256=" in constant time (crypto.timingSafeEqual).
//   4. Refuse a timestamp more than 5 minutes from the receiver's clock: a captured request
//      cannot be replayed later. X-Pgwarden-Delivery is the same on every retry of one delivery,
//      so receivers can also drop duplicates by it.
import { createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'sha256=';
const HEX_LENGTH = 64;

/** The X-Pgwarden-Signature value for `body` sent at `timestamp` (unix seconds). */
export function signWebhookBody(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  return PREFIX + hmac(secret, String(timestamp), body).toString('hex');
}

export type SignatureProblem = 'malformed' | 'stale' | 'mismatch';

/**
 * Why a webhook request's signature is not acceptable, or null when it is. `timestamp` and
 * `header` are the X-Pgwarden-Timestamp and X-Pgwarden-Signature values as received.
 */
export function webhookSignatureProblem(
  secret: string,
  timestamp: string | number | undefined,
  body: string | Uint8Array,
  header: string | undefined,
  toleranceSeconds = 300,
  nowSeconds: number = Date.now() / 1000,
): SignatureProblem | null {
  const ts = timestamp === undefined ? '' : String(timestamp);
  if (!/^\d{1,12}$/.test(ts) || header === undefined) return 'malformed';
  const given = header.trim();
  if (!given.startsWith(PREFIX)) return 'malformed';
  const hex = given.slice(PREFIX.length);
  if (hex.length !== HEX_LENGTH || !/^[0-9a-fA-F]+$/.test(hex)) return 'malformed';
  if (Math.abs(nowSeconds - Number(ts)) > toleranceSeconds) return 'stale';
  const expected = hmac(secret, ts, body);
  return timingSafeEqual(expected, Buffer.from(hex, 'hex')) ? null : 'mismatch';
}

/** True when the signature is well formed, fresh (within `toleranceSeconds`) and made with `secret`. */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number | undefined,
  body: string | Uint8Array,
  header: string | undefined,
  toleranceSeconds = 300,
  nowSeconds: number = Date.now() / 1000,
): boolean {
  return webhookSignatureProblem(secret, timestamp, body, header, toleranceSeconds, nowSeconds) === null;
}

function hmac(secret: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/** What a stored webhook secret is bound to when the catalog holds it sealed: its server and URL
 * (a sealed secret copied to another webhook or server does not open). */
export function webhookSecretAad(server: string, url: string): string {
  return `pgwarden/webhook-secret\u0000${server}\u0000${url}`;
}
