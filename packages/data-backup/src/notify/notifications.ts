/**
 * The notifications of one application: the webhooks and the heartbeat, made from `Koan.Backup.Notifications` or in
 * code. `emit` builds and checks one event and hands it to every webhook whose filter takes it; it returns at once and
 * never throws, so the backup, restore or maintenance pass that emits is never slowed down or failed by it.
 */
import { parseConfigSection } from '@koan/data/config';
import { z } from 'zod';
import {
  type NotificationsConfigInput,
  notificationsConfigSchema,
  type ResolvedNotifications,
  resolveNotificationsConfig,
} from './config.js';
import type { DeliveryResult } from './delivery.js';
import { createEvent, type NotificationData, type NotificationEvent, type NotificationType } from './events.js';
import { type FailureListener, reportFailure } from './failure.js';
import { Heartbeat, type HeartbeatOptions } from './heartbeat.js';
import { type DeliveryStats, WebhookNotifier, type WebhookOptions } from './webhook.js';

export interface NotificationsOptions {
  /** Names the application or environment in every event (`source.app`). */
  readonly app?: string | undefined;
  readonly webhooks?: readonly (WebhookNotifier | WebhookOptions)[];
  readonly heartbeat?: Heartbeat | HeartbeatOptions | undefined;
  /** Where failures go (for notifiers given as options); default: a `console.warn` line each. */
  readonly onFailure?: FailureListener | undefined;
}

/** Options applied to every notifier `fromConfig` makes. */
export interface NotificationsRuntimeOptions {
  /** Environment for `${env:NAME}` references. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly onFailure?: FailureListener | undefined;
  /** Delay before the first retry (doubling after). @default 1000 */
  readonly baseDelayMs?: number | undefined;
  /** Stops every delivery and retry when aborted. */
  readonly signal?: AbortSignal | undefined;
  readonly fetch?: typeof fetch | undefined;
}

export class Notifications {
  readonly #app: string | undefined;
  readonly #webhooks: readonly WebhookNotifier[];
  readonly #heartbeat: Heartbeat | undefined;
  readonly #onFailure: FailureListener | undefined;

  constructor(options: NotificationsOptions = {}) {
    this.#app = options.app;
    this.#onFailure = options.onFailure;
    const onFailure = options.onFailure ? { onFailure: options.onFailure } : {};
    this.#webhooks = (options.webhooks ?? []).map((w) =>
      w instanceof WebhookNotifier ? w : new WebhookNotifier({ ...onFailure, ...w }),
    );
    const h = options.heartbeat;
    this.#heartbeat = h === undefined || h instanceof Heartbeat ? h : new Heartbeat({ ...onFailure, ...h });
  }

  /**
   * The notifications `Koan.Backup.Notifications` describes (none when `section` is undefined). The section is
   * validated as koan.config.json's loader does (keys in any case, env text converted), then `${env:NAME}` references
   * are resolved; every error is a `ConfigError` naming the key path and the fix.
   */
  static fromConfig(
    section: NotificationsConfigInput | undefined,
    options: NotificationsRuntimeOptions = {},
  ): Notifications {
    const parsed = parseConfigSection(notificationsConfigSchema, section ?? {}, ['Koan', 'Backup', 'Notifications']);
    const resolved: ResolvedNotifications = resolveNotificationsConfig(parsed, options.env);
    const shared = {
      ...(options.onFailure ? { onFailure: options.onFailure } : {}),
      ...(options.baseDelayMs === undefined ? {} : { baseDelayMs: options.baseDelayMs }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    };
    return new Notifications({
      app: resolved.app,
      // The section was checked whole above: what is left to refuse here are the runtime options (`baseDelayMs`).
      webhooks: resolved.webhooks.map(({ name: _, ...w }) => new WebhookNotifier({ ...w, ...shared })),
      heartbeat: resolved.heartbeat && new Heartbeat({ ...resolved.heartbeat, ...shared }),
      onFailure: options.onFailure,
    });
  }

  /** Whether any webhook or a heartbeat is configured. */
  get enabled(): boolean {
    return this.#webhooks.length > 0 || this.#heartbeat !== undefined;
  }

  /** Each webhook's receiver (scheme, host, port) and what it has done so far. */
  get stats(): readonly (DeliveryStats & { readonly target: string })[] {
    return this.#webhooks.map((w) => ({ target: w.target, ...w.stats }));
  }

  /**
   * Sends an event of `type` to every webhook whose filter takes it, and returns the event (`undefined` when no
   * webhook takes it, or when `data` breaks the type's schema: that is reported to `onFailure`, not thrown).
   */
  emit<T extends NotificationType>(type: T, data: NotificationData<T>): NotificationEvent<T> | undefined {
    const takers = this.#webhooks.filter((w) => w.accepts(type));
    if (!takers.length) return undefined;
    let event: NotificationEvent<T>;
    try {
      event = createEvent(type, data, { app: this.#app });
    } catch (e) {
      reportFailure(this.#onFailure, {
        kind: 'event',
        target: type,
        reason: 'invalid-event',
        message: `not sent: its data does not match the schema of ${type}: ${e instanceof z.ZodError ? z.prettifyError(e) : (e as Error).message}`,
        eventType: type,
      });
      return undefined;
    }
    for (const w of takers) w.notify(event);
    return event;
  }

  /**
   * Pings the heartbeat after a successful scheduled run (with `summary` as the body when its method is POST).
   * Resolves with how it went (`undefined` without a heartbeat); never rejects.
   */
  pingHeartbeat(summary?: Record<string, unknown>): Promise<DeliveryResult | undefined> {
    return this.#heartbeat ? this.#heartbeat.ping(summary) : Promise.resolve(undefined);
  }

  /** Waits up to `timeoutMs` for every webhook's queue to empty: `true` when all did. */
  async flush(timeoutMs = 10_000): Promise<boolean> {
    const done = await Promise.all(this.#webhooks.map((w) => w.flush(timeoutMs)));
    return done.every(Boolean);
  }

  /** Flushes for up to `timeoutMs`, then stops every notifier (what is left is dropped and counted). */
  async close(timeoutMs = 5_000): Promise<void> {
    await Promise.all([...this.#webhooks.map((w) => w.close(timeoutMs)), this.#heartbeat?.close(timeoutMs)]);
  }
}
