// What notifiers deliver and what they report back: the alert as the alert store hands it over,
// and one DeliveryResult per (alert, channel, target) that the caller records (the catalog's
// `Delivery` has the same shape).

export interface AlertLocation {
  readonly country: string | null;
  readonly asn: number | null;
  readonly organization: string | null;
  readonly kind: string;
}

export interface AlertForDelivery {
  readonly id: string;
  readonly server: string;
  /** 'BruteForce' | 'HarmfulApplication' | ... */
  readonly type: string;
  readonly severity: 'Low' | 'Medium' | 'High';
  /** e.g. "Brute force attempts on server orders" */
  readonly title: string;
  /** What happened, in sentences. */
  readonly description: string;
  /** MITRE ATT&CK tactic, e.g. "Credential Access". */
  readonly tactic: string;
  readonly principal: string | null;
  readonly sourceAddress: string | null;
  readonly location: AlertLocation | null;
  /** ISO 8601. */
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly count: number;
  /** Already redacted upstream; notifiers still mask keys that name secrets. */
  readonly evidence: Readonly<Record<string, unknown>>;
  readonly recommendedAction: string;
  readonly consoleUrl?: string;
}

export type DeliveryChannel = 'email' | 'webhook';

export interface DeliveryResult {
  readonly alertId: string;
  readonly channel: DeliveryChannel;
  /** The e-mail address(es), or the webhook URL without credentials and query values. */
  readonly target: string;
  readonly outcome: 'delivered' | 'failed';
  /** Attempts made; 0 when the delivery never started (dropped, closed, invalid target). */
  readonly attempts: number;
  /** Why it failed; never contains a secret. */
  readonly error?: string;
  /** ISO 8601, when the outcome was known. */
  readonly time: string;
}

/** Options every send() takes: aborting stops retries and in-flight I/O. */
export interface SendOptions {
  readonly signal?: AbortSignal;
}

/** Invalid notifier settings (a configuration error, raised at construction). */
export class NotifySettingsError extends Error {
  override readonly name = 'NotifySettingsError';
}
