// Alert notifications: e-mail over SMTP and signed webhooks, delivered in the background by the
// dispatcher. What the rest of pgwarden imports.
export type { AlertForDelivery, AlertLocation, DeliveryChannel, DeliveryResult, SendOptions } from './types.js';
export { NotifySettingsError } from './types.js';
export { EmailNotifier, type EmailNotifierOptions, type SmtpSettings } from './email.js';
export { WebhookNotifier, webhookPayload, WEBHOOK_SCHEMA_VERSION, type WebhookNotifierOptions } from './webhook.js';
export { signWebhookBody, verifyWebhookSignature, webhookSecretAad, webhookSignatureProblem, type SignatureProblem } from './signature.js';
export { renderAlertEmail, alertSubject, escapeHtml, type AlertEmail } from './email-content.js';
export { DEFAULT_EMAIL_RETRY, DEFAULT_WEBHOOK_RETRY, type RetryPolicy } from './retry.js';
export {
  NotificationDispatcher,
  type CloseOutcome,
  type DispatcherOptions,
  type DispatcherStats,
  type EmailSender,
  type NotificationTargets,
  type WebhookSender,
} from './dispatcher.js';
