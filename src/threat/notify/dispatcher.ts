// Delivers alerts to a policy's e-mail addresses and webhooks in the background. deliver() never
// blocks or throws: each (channel, target) becomes a job in a bounded queue run by a few workers;
// when more than `maxPending` jobs wait, the oldest is dropped (counted in `dropped`, reported as
// a failed result). Every job ends in exactly one DeliveryResult, given to `onResult` and emitted
// as 'result'; the caller records it. One e-mail per address (recipients do not see each other
// and each address has its own outcome). Repeats of an alert are throttled per target (see
// resend-throttle.ts). close() lets pending and in-flight deliveries finish up to a timeout,
// then aborts the rest and reports them failed.
import { EventEmitter } from 'node:events';
import { cleanLine } from './evidence.js';
import { ResendThrottle, type ResendMark } from './resend-throttle.js';
import { webhookTarget } from './target.js';
import { NotifySettingsError, type AlertForDelivery, type DeliveryChannel, type DeliveryResult, type SendOptions } from './types.js';
import { WebhookNotifier } from './webhook.js';

export interface NotificationTargets {
  readonly emails: readonly string[];
  readonly webhooks: readonly { readonly url: string; readonly secret: string }[];
}

/** What the dispatcher needs of an e-mail notifier (EmailNotifier is one). */
export interface EmailSender {
  send(alert: AlertForDelivery, to: readonly string[], opts?: SendOptions): Promise<DeliveryResult>;
  close?(): void;
}

/** What the dispatcher needs of a webhook notifier (WebhookNotifier is one). */
export interface WebhookSender {
  send(alert: AlertForDelivery, url: string, secret: string, opts?: SendOptions): Promise<DeliveryResult>;
}

export interface DispatcherOptions {
  /** null or absent: e-mail is not configured, and e-mail targets get a failed result saying so. */
  readonly email?: EmailSender | null;
  /** Default: a WebhookNotifier with default settings. */
  readonly webhook?: WebhookSender;
  /** Deliveries run at once. Default 4. */
  readonly concurrency?: number;
  /** Deliveries waiting beyond which the oldest is dropped. Default 1000. */
  readonly maxPending?: number;
  /** Minimum time between two e-mails about one alert to one address. Default 15 minutes. */
  readonly emailResendIntervalMs?: number;
  /** Minimum time between two webhook calls about one alert to one URL. Default 15 minutes. */
  readonly webhookResendIntervalMs?: number;
  /** Resend marks kept. Default 10000. */
  readonly throttleEntries?: number;
  readonly onResult?: (result: DeliveryResult) => void;
  /** Opens a webhook secret as the catalog holds it (sealed, see platform/secrets.ts), right
   * before signing; throws when it cannot (the delivery fails, nothing is sent unsigned). Absent:
   * secrets are used as given. */
  readonly openSecret?: (stored: string, server: string, url: string) => string;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export interface DispatcherStats {
  /** Waiting in the queue. */
  readonly pending: number;
  readonly inFlight: number;
  readonly delivered: number;
  readonly failed: number;
  /** Dropped because the queue was full (also counted in `failed`). */
  readonly dropped: number;
  /** Not sent because the same alert went to the same target recently. */
  readonly throttled: number;
}

export interface CloseOutcome {
  /** True when everything finished before the timeout. */
  readonly completed: boolean;
  /** Deliveries aborted or never started because of the timeout. */
  readonly abandoned: number;
}

interface Job {
  readonly alertId: string;
  readonly channel: DeliveryChannel;
  readonly target: string;
  readonly key: string;
  readonly taken: { readonly mine: ResendMark; readonly previous: ResendMark | undefined };
  readonly run: (signal: AbortSignal) => Promise<DeliveryResult>;
}

const MINUTE = 60_000;

export class NotificationDispatcher extends EventEmitter<{ result: [DeliveryResult] }> {
  private readonly email: EmailSender | null;
  private readonly webhook: WebhookSender;
  private readonly concurrency: number;
  private readonly maxPending: number;
  private readonly emailInterval: number;
  private readonly webhookInterval: number;
  private readonly throttle: ResendThrottle;
  private readonly onResult: ((r: DeliveryResult) => void) | undefined;
  private readonly now: () => number;
  private readonly openSecret: ((stored: string, server: string, url: string) => string) | undefined;
  private readonly abort = new AbortController();
  private readonly queue: Job[] = [];
  private readonly running = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private counts = { delivered: 0, failed: 0, dropped: 0, throttled: 0 };

  constructor(options: DispatcherOptions = {}) {
    super();
    this.email = options.email ?? null;
    this.webhook = options.webhook ?? new WebhookNotifier();
    this.concurrency = positiveInt(options.concurrency ?? 4, 'concurrency');
    this.maxPending = positiveInt(options.maxPending ?? 1000, 'maxPending');
    this.emailInterval = nonNegative(options.emailResendIntervalMs ?? 15 * MINUTE, 'emailResendIntervalMs');
    this.webhookInterval = nonNegative(options.webhookResendIntervalMs ?? 15 * MINUTE, 'webhookResendIntervalMs');
    this.throttle = new ResendThrottle(positiveInt(options.throttleEntries ?? 10_000, 'throttleEntries'));
    this.onResult = options.onResult;
    this.now = options.now ?? Date.now;
    this.openSecret = options.openSecret;
  }

  /** Signs with the opened secret; a secret that does not open fails the delivery. */
  private sendWebhook(alert: AlertForDelivery, hook: { readonly url: string; readonly secret: string }, signal: AbortSignal): Promise<DeliveryResult> {
    let secret: string;
    try {
      secret = this.openSecret ? this.openSecret(hook.secret, alert.server, hook.url) : hook.secret;
    } catch (err) {
      return Promise.resolve(
        failure(
          alert.id,
          'webhook',
          webhookTarget(hook.url),
          `the webhook's secret cannot be used: ${cleanLine(err instanceof Error ? err.message : String(err), 200)}`,
        ),
      );
    }
    return this.webhook.send(alert, hook.url, secret, { signal });
  }

  /** Queues the deliveries of `alert` to `targets` and returns at once. Never throws. */
  deliver(alert: AlertForDelivery, targets: NotificationTargets): void {
    try {
      const now = this.now();
      for (const address of unique(targets.emails.map((a) => a.trim()))) {
        const email = this.email;
        this.enqueue(alert, 'email', address, cleanLine(address, 254), now, this.emailInterval, (signal) =>
          email
            ? email.send(alert, [address], { signal })
            : Promise.resolve(failure(alert.id, 'email', cleanLine(address, 254), 'e-mail is not configured (no SMTP settings)')),
        );
      }
      const seen = new Set<string>();
      for (const hook of targets.webhooks) {
        if (seen.has(hook.url)) continue;
        seen.add(hook.url);
        this.enqueue(alert, 'webhook', hook.url, webhookTarget(hook.url), now, this.webhookInterval, (signal) => this.sendWebhook(alert, hook, signal));
      }
      this.pump();
    } catch (err) {
      // Only a programming error can land here; the caller must not be hurt by it.
      this.report(failure(safeId(alert), 'webhook', '', `internal error: ${cleanLine(String(err), 200)}`));
    }
  }

  stats(): DispatcherStats {
    return { pending: this.queue.length, inFlight: this.running.size, ...this.counts };
  }

  /** Resolves when nothing is pending or in flight. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking deliveries, lets pending and in-flight ones finish for up to `timeoutMs`, then
   * aborts the rest (reported failed) and closes the e-mail notifier.
   */
  async close(timeoutMs = 10_000): Promise<CloseOutcome> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const first = await Promise.race([this.idle().then(() => 'idle' as const), timedOut]);
    clearTimeout(timer);
    let abandoned = 0;
    if (first === 'timeout') {
      abandoned = this.queue.length + this.running.size;
      for (const job of this.queue.splice(0))
        this.report(failure(job.alertId, job.channel, job.target, 'the notification dispatcher closed before this delivery started'));
      this.abort.abort();
      await Promise.allSettled([...this.running]);
    }
    this.email?.close?.();
    return { completed: first === 'idle', abandoned };
  }

  private enqueue(
    alert: AlertForDelivery,
    channel: DeliveryChannel,
    rawTarget: string,
    target: string,
    now: number,
    interval: number,
    run: (signal: AbortSignal) => Promise<DeliveryResult>,
  ): void {
    if (this.closed) {
      queueMicrotask(() => this.report(failure(alert.id, channel, target, 'the notification dispatcher is closed')));
      return;
    }
    const key = `${channel}\u0000${rawTarget}\u0000${alert.id}`;
    const taken = this.throttle.take(key, alert.count, now, interval);
    if (!taken) {
      this.counts.throttled++;
      return;
    }
    if (this.queue.length >= this.maxPending) {
      const oldest = this.queue.shift()!;
      this.counts.dropped++;
      this.throttle.release(oldest.key, oldest.taken);
      this.report(failure(oldest.alertId, oldest.channel, oldest.target, `dropped: more than ${this.maxPending} notifications were waiting`));
    }
    this.queue.push({ alertId: alert.id, channel, target, key, taken, run });
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      const p: Promise<void> = this.runJob(job).finally(() => {
        this.running.delete(p);
        this.pump();
        if (this.queue.length === 0 && this.running.size === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
      this.running.add(p);
    }
  }

  private async runJob(job: Job): Promise<void> {
    let result: DeliveryResult;
    try {
      result = await job.run(this.abort.signal);
    } catch (err) {
      result = failure(job.alertId, job.channel, job.target, `internal error: ${cleanLine(err instanceof Error ? err.message : String(err), 200)}`);
    }
    this.report(result);
  }

  private report(result: DeliveryResult): void {
    if (result.outcome === 'delivered') this.counts.delivered++;
    else this.counts.failed++;
    try {
      this.onResult?.(result);
    } catch {
      // a failing recorder must not stop deliveries
    }
    try {
      this.emit('result', result);
    } catch {
      // same for listeners
    }
  }
}

function failure(alertId: string, channel: DeliveryChannel, target: string, error: string): DeliveryResult {
  return { alertId, channel, target, outcome: 'failed', attempts: 0, error, time: new Date().toISOString() };
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)].filter((x) => x !== '');
}

function safeId(alert: AlertForDelivery): string {
  try {
    return String(alert.id);
  } catch {
    return '';
  }
}

function positiveInt(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1) throw new NotifySettingsError(`${what} must be a positive integer, got ${n}`);
  return n;
}

function nonNegative(n: number, what: string): number {
  if (!Number.isFinite(n) || n < 0) throw new NotifySettingsError(`${what} must be 0 or more, got ${n}`);
  return n;
}
