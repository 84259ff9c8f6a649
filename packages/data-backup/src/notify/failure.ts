/**
 * What a notifier could not do, and where it goes: to the `onFailure` listener, else a `console.warn` line. Failures
 * are never silent, yet never thrown at the backup or restore that caused the event.
 */
import type { NotificationType } from './events.js';

/** Something a notifier could not deliver. */
export interface NotificationFailure {
  /** `event`: the event itself could not be made (see `invalid-event`). */
  readonly kind: 'webhook' | 'heartbeat' | 'event';
  /** The receiver: scheme, host and port only (paths often hold secrets); the event type for `event`. */
  readonly target: string;
  /**
   * `gave-up`: retries ran out or the answer was final (4xx); `dropped`: never sent (queue full, closed, too large);
   * `invalid-event`: the event's data broke its schema (a bug in the code that emitted it), so it was not sent.
   */
  readonly reason: 'gave-up' | 'dropped' | 'invalid-event';
  readonly message: string;
  readonly eventType?: NotificationType;
  readonly eventId?: string;
  readonly attempts?: number;
  readonly status?: number;
}

export type FailureListener = (failure: NotificationFailure) => void;

const warnOnConsole: FailureListener = (f) =>
  console.warn(`[koan-backup] ${f.kind} ${f.target}: ${f.eventType ? `${f.eventType} ` : ''}${f.message}`);

/** Hands `failure` to `listener` (or the console without one); a listener that throws is reported, not rethrown. */
export function reportFailure(listener: FailureListener | undefined, failure: NotificationFailure): void {
  try {
    (listener ?? warnOnConsole)(failure);
  } catch (e) {
    console.warn('[koan-backup] onFailure threw while reporting a notification failure:', e);
  }
}
