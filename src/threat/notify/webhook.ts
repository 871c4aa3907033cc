// Webhook delivery: POST {"schemaVersion":1,"alert":{...}} as JSON, signed (see signature.ts),
// over http or https (node:http/https, so a private CA can be given), redirects never followed,
// each attempt bounded by a timeout. Retried with backoff and jitter on network errors, timeouts,
// 5xx and 429 (Retry-After honoured up to the cap); never on other 4xx, 3xx or certificate
// errors, which retrying cannot fix. One X-Pgwarden-Delivery id per delivery, the same on every
// retry; the timestamp and signature are made afresh for each attempt. A user:password in the
// URL is sent as HTTP Basic authorization (Node's behaviour) and never shown in results.
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { cleanLine, maskSecrets, safeLink } from './evidence.js';
import { ABORTED, DEFAULT_WEBHOOK_RETRY, parseRetryAfter, retryPolicy, withRetries, type AttemptOutcome, type RetryPolicy } from './retry.js';
import { signWebhookBody } from './signature.js';
import { parseWebhookUrl, webhookTarget } from './target.js';
import { NotifySettingsError, type AlertForDelivery, type DeliveryResult, type SendOptions } from './types.js';

export const WEBHOOK_SCHEMA_VERSION = 1;

export interface WebhookNotifierOptions {
  /** Default: 5 attempts, 500 ms base, 30 s cap. */
  readonly retry?: Partial<RetryPolicy>;
  /** Bound on one attempt, from connecting to the end of the response. Default 10 s. */
  readonly timeoutMs?: number;
  /** PEM CA certificate(s) trusted for https URLs instead of the system store. */
  readonly ca?: string;
  /** Jitter source, for tests. */
  readonly random?: () => number;
}

const RESPONSE_LIMIT = 64 * 1024;
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;

/** The JSON body for `alert`: every alert field, evidence with secret-named keys masked. */
export function webhookPayload(alert: AlertForDelivery): string {
  const link = safeLink(alert.consoleUrl);
  return JSON.stringify({
    schemaVersion: WEBHOOK_SCHEMA_VERSION,
    alert: {
      id: alert.id,
      server: alert.server,
      type: alert.type,
      severity: alert.severity,
      title: alert.title,
      description: alert.description,
      tactic: alert.tactic,
      principal: alert.principal,
      sourceAddress: alert.sourceAddress,
      location: alert.location
        ? { country: alert.location.country, asn: alert.location.asn, organization: alert.location.organization, kind: alert.location.kind }
        : null,
      firstSeen: alert.firstSeen,
      lastSeen: alert.lastSeen,
      count: alert.count,
      evidence: maskSecrets(alert.evidence),
      recommendedAction: alert.recommendedAction,
      ...(link ? { consoleUrl: link } : {}),
    },
  });
}

/** How an HTTP status is judged: delivered, worth retrying, or final. */
export function judgeStatus(status: number, retryAfter: string | undefined, nowMs: number = Date.now()): AttemptOutcome {
  if (status >= 200 && status < 300) return { ok: true };
  if (status === 429 || (status >= 500 && status < 600)) {
    return { ok: false, retryable: true, error: `HTTP ${status}`, retryAfterMs: parseRetryAfter(retryAfter, nowMs) };
  }
  if (status >= 300 && status < 400) return { ok: false, retryable: false, error: `HTTP ${status}: redirects are not followed` };
  return { ok: false, retryable: false, error: `HTTP ${status}` };
}

export class WebhookNotifier {
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly random: () => number;

  constructor(private readonly options: WebhookNotifierOptions = {}) {
    this.retry = retryPolicy(options.retry, DEFAULT_WEBHOOK_RETRY);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0 || this.timeoutMs > 600_000) {
      throw new NotifySettingsError('webhook timeoutMs must be more than 0 and at most 600000');
    }
    if (options.ca !== undefined && !options.ca.includes('-----BEGIN CERTIFICATE-----')) throw new NotifySettingsError('webhook ca must be PEM certificate(s)');
    this.random = options.random ?? Math.random;
  }

  async send(alert: AlertForDelivery, url: string, secret: string, opts: SendOptions = {}): Promise<DeliveryResult> {
    const target = webhookTarget(url);
    const result = (outcome: 'delivered' | 'failed', attempts: number, error?: string): DeliveryResult => ({
      alertId: alert.id,
      channel: 'webhook',
      target,
      outcome,
      attempts,
      ...(error !== undefined ? { error } : {}),
      time: new Date().toISOString(),
    });
    const u = parseWebhookUrl(url);
    if (!u) return result('failed', 0, 'not an http or https URL');
    if (typeof secret !== 'string' || secret.length === 0) return result('failed', 0, 'the webhook has no secret to sign with');
    const body = webhookPayload(alert);
    const deliveryId = randomUUID();
    const outcome = await withRetries(this.retry, () => this.attempt(u, body, secret, deliveryId, opts.signal), opts.signal, this.random);
    return outcome.ok ? result('delivered', outcome.attempts) : result('failed', outcome.attempts, outcome.error);
  }

  private attempt(u: URL, body: string, secret: string, deliveryId: string, signal: AbortSignal | undefined): Promise<AttemptOutcome> {
    return new Promise((resolve) => {
      const timestamp = Math.floor(Date.now() / 1000);
      const headers = {
        'Content-Type': 'application/json',
        'Content-Length': String(Buffer.byteLength(body)),
        'User-Agent': 'pgwarden-webhook/1',
        'X-Pgwarden-Event': 'alert',
        'X-Pgwarden-Delivery': deliveryId,
        'X-Pgwarden-Timestamp': String(timestamp),
        'X-Pgwarden-Signature': signWebhookBody(secret, timestamp, body),
      };
      let settled = false;
      let req: http.ClientRequest | null = null;
      const finish = (o: AttemptOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        req?.destroy();
        resolve(o);
      };
      const onAbort = (): void => finish({ ok: false, retryable: false, error: ABORTED });
      const timer = setTimeout(() => finish({ ok: false, retryable: true, error: `timed out after ${this.timeoutMs} ms` }), this.timeoutMs);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });

      const onResponse = (res: http.IncomingMessage): void => {
        const retryAfter = res.headers['retry-after'];
        const judged = judgeStatus(res.statusCode ?? 0, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
        // Read the (ignored) response to its end so the receiver sees a clean exchange, bounded.
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > RESPONSE_LIMIT) finish(judged);
        });
        res.on('end', () => finish(judged));
        res.on('error', () => finish(judged));
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        const code = typeof err.code === 'string' ? err.code : '';
        const message = cleanLine(err.message, 300);
        finish({ ok: false, retryable: !CERT_ERROR.test(code), error: code && !message.includes(code) ? `${code}: ${message}` : message });
      };
      try {
        if (u.protocol === 'https:') {
          req = https.request(
            u,
            { method: 'POST', headers, agent: false, minVersion: 'TLSv1.2', ...(this.options.ca ? { ca: this.options.ca } : {}) },
            onResponse,
          );
        } else {
          req = http.request(u, { method: 'POST', headers, agent: false }, onResponse);
        }
      } catch (err) {
        return finish({ ok: false, retryable: false, error: cleanLine((err as Error).message, 300) });
      }
      req.on('error', onError);
      req.end(body);
    });
  }
}
