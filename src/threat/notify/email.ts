// E-mail delivery over SMTP (nodemailer's SMTP transport, one connection per message: alerts are
// rare and throttled, so nothing is kept open between them). Implicit TLS (`secure`) or
// STARTTLS, required when `requireTls`; credentials are refused unless one of the two protects
// them. Transient failures (connection errors, timeouts, SMTP 4xx replies) are retried with
// backoff; permanent ones (5xx replies, bad credentials, TLS verification) are not.
import { createTransport } from 'nodemailer';
import { renderAlertEmail } from './email-content.js';
import { cleanLine } from './evidence.js';
import { DEFAULT_EMAIL_RETRY, retryPolicy, withRetries, type AttemptOutcome, type RetryPolicy } from './retry.js';
import { NotifySettingsError, type AlertForDelivery, type DeliveryResult, type SendOptions } from './types.js';

export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  /** Implicit TLS from the first byte (usually port 465). */
  readonly secure: boolean;
  /** Refuse to send unless STARTTLS succeeds (when not `secure`). */
  readonly requireTls: boolean;
  readonly user?: string;
  readonly password?: string;
  /** The From address, e.g. `pgwarden <alerts@example.com>`. */
  readonly from: string;
  /** Verify the server's certificate (default true). */
  readonly rejectUnauthorized?: boolean;
  /** PEM CA certificate(s) to trust instead of the system store. */
  readonly ca?: string;
  /** Bound on connecting, the greeting and each wait for the server. */
  readonly timeoutMs: number;
}

export interface EmailNotifierOptions {
  /** Default: 3 attempts, 2 s base, 30 s cap. */
  readonly retry?: Partial<RetryPolicy>;
  /** Jitter source, for tests. */
  readonly random?: () => number;
}

type Transporter = ReturnType<typeof createTransport>;

const ADDRESS = /^[^\s@<>,;:"()[\]\\]+@[^\s@<>,;:"()[\]\\]+$/;
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;
const RETRYABLE_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE']);

export function validateSmtpSettings(s: SmtpSettings): void {
  if (typeof s.host !== 'string' || s.host.trim() === '' || /[\s/]/.test(s.host)) throw new NotifySettingsError('SMTP host must be a host name or address');
  if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new NotifySettingsError(`SMTP port must be 1-65535, got ${s.port}`);
  if (!Number.isFinite(s.timeoutMs) || s.timeoutMs <= 0 || s.timeoutMs > 600_000)
    throw new NotifySettingsError('SMTP timeoutMs must be more than 0 and at most 600000');
  if (typeof s.from !== 'string' || !s.from.includes('@') || /[\r\n]/.test(s.from)) throw new NotifySettingsError('SMTP from must be an e-mail address');
  if ((s.user === undefined) !== (s.password === undefined)) throw new NotifySettingsError('SMTP user and password go together');
  if (s.user !== undefined && !s.secure && !s.requireTls) {
    throw new NotifySettingsError('SMTP credentials would cross the network in clear: set secure (implicit TLS) or requireTls (STARTTLS)');
  }
  if (s.ca !== undefined && !s.ca.includes('-----BEGIN CERTIFICATE-----')) throw new NotifySettingsError('SMTP ca must be PEM certificate(s)');
}

/** A permanent or transient judgement of a nodemailer error, with a message safe to record. */
export function classifySmtpError(err: unknown): AttemptOutcome {
  const e = err as { code?: unknown; originalCode?: unknown; responseCode?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const original = typeof e.originalCode === 'string' ? e.originalCode : '';
  const reply = typeof e.responseCode === 'number' ? e.responseCode : null;
  const message = cleanLine(typeof e.message === 'string' ? e.message : String(err), 300);
  // A certificate the transport cannot verify stays unverifiable: not worth retrying.
  const certificate = CERT_ERROR.test(original) || /certificate/i.test(message);
  const retryable = reply !== null ? reply >= 400 && reply < 500 : RETRYABLE_CODES.has(code) && !certificate;
  const shown = original && original !== code ? `${code} (${original})` : code;
  return { ok: false, retryable, error: shown ? `${shown}: ${message}` : message };
}

export class EmailNotifier {
  private readonly transport: Transporter;
  private readonly retry: RetryPolicy;
  private readonly random: () => number;
  private closed = false;

  constructor(
    private readonly settings: SmtpSettings,
    options: EmailNotifierOptions = {},
  ) {
    validateSmtpSettings(settings);
    this.retry = retryPolicy(options.retry, DEFAULT_EMAIL_RETRY);
    this.random = options.random ?? Math.random;
    this.transport = createTransport({
      host: settings.host,
      port: settings.port,
      secure: settings.secure,
      requireTLS: settings.requireTls,
      auth: settings.user !== undefined ? { user: settings.user, pass: settings.password } : undefined,
      tls: {
        rejectUnauthorized: settings.rejectUnauthorized ?? true,
        minVersion: 'TLSv1.2',
        ...(settings.ca !== undefined ? { ca: settings.ca } : {}),
      },
      connectionTimeout: settings.timeoutMs,
      greetingTimeout: settings.timeoutMs,
      socketTimeout: settings.timeoutMs,
      logger: false,
      debug: false,
      disableFileAccess: true,
      disableUrlAccess: true,
    });
  }

  /** Sends one message for `alert` to all of `to`; delivered only when every address was accepted. */
  async send(alert: AlertForDelivery, to: readonly string[], opts: SendOptions = {}): Promise<DeliveryResult> {
    const target = to.map((a) => cleanLine(a, 254)).join(', ');
    const result = (outcome: 'delivered' | 'failed', attempts: number, error?: string): DeliveryResult => ({
      alertId: alert.id,
      channel: 'email',
      target,
      outcome,
      attempts,
      ...(error !== undefined ? { error } : {}),
      time: new Date().toISOString(),
    });
    if (this.closed) return result('failed', 0, 'the e-mail notifier is closed');
    if (to.length === 0) return result('failed', 0, 'no recipient');
    const bad = to.find((a) => !ADDRESS.test(a) || a.length > 254);
    if (bad !== undefined) return result('failed', 0, `not an e-mail address: ${cleanLine(bad, 100)}`);

    const mail = renderAlertEmail(alert);
    const outcome = await withRetries(
      this.retry,
      async () => {
        try {
          const info = await this.transport.sendMail({
            from: this.settings.from,
            to: [...to],
            subject: mail.subject,
            text: mail.text,
            html: mail.html,
            headers: {
              'Auto-Submitted': 'auto-generated',
              'X-Auto-Response-Suppress': 'All',
              'X-Pgwarden-Alert-Id': cleanLine(alert.id, 80),
              'X-Pgwarden-Severity': alert.severity,
            },
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
          const rejected: readonly unknown[] = info.rejected ?? [];
          if (rejected.length > 0) return { ok: false, retryable: false, error: `recipients refused: ${cleanLine(rejected.map(String).join(', '), 300)}` };
          return { ok: true };
        } catch (err) {
          return classifySmtpError(err);
        }
      },
      opts.signal,
      this.random,
    );
    return outcome.ok ? result('delivered', outcome.attempts) : result('failed', outcome.attempts, outcome.error);
  }

  /** Later sends fail at once. */
  close(): void {
    this.closed = true;
    this.transport.close();
  }
}
