/** Notifications: events of backups, restores, health, drills and retention sent to webhooks, and the heartbeat. */
export {
  heartbeatConfigSchema,
  type NotificationsConfig,
  type NotificationsConfigInput,
  notificationsConfigSchema,
  resolveNotificationsConfig,
  webhookConfigSchema,
} from './config.js';
export type { DeliveryResult, RetryOptions, SenderOptions } from './delivery.js';
export {
  createEvent,
  EVENT_PATTERNS,
  NOTIFICATION_TYPES,
  type NotificationData,
  type NotificationEvent,
  type NotificationType,
  notificationDataSchemas,
  notificationEventJsonSchema,
  notificationEventSchema,
} from './events.js';
export type { FailureListener, NotificationFailure } from './failure.js';
export { Heartbeat, type HeartbeatOptions } from './heartbeat.js';
export { Notifications, type NotificationsOptions, type NotificationsRuntimeOptions } from './notifications.js';
export {
  signWebhook,
  verifyWebhookSignature,
  type WebhookVerification,
  type WebhookVerificationInput,
} from './signature.js';
export { type SlackMessage, slackMessage } from './slack.js';
export { type DeliveryStats, WebhookNotifier, type WebhookOptions } from './webhook.js';
