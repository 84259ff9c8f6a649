/**
 * A webhook: events queued in memory (queue.ts) and POSTed one at a time, in order, signed (signature.ts) and retried
 * (delivery.ts). `notify` only queues, so it never waits for the receiver and never throws: a slow or dead receiver
 * cannot block or fail a backup. Events the queue drops, and events given up, are counted and reported.
 */
import { BackupError, invalidOption } from '../errors.js';
import { type DeliveryResult, Endpoint, type OutgoingRequest, type SenderOptions, settlesWithin } from './delivery.js';
import { EVENT_PATTERNS, matchesEvent, type NotificationEvent, type NotificationType } from './events.js';
import { BoundedQueue } from './queue.js';
import { SECRET_ADVICE, SIGNATURE_HEADERS, secretProblem, signWebhook } from './signature.js';
import { slackMessage } from './slack.js';

export type WebhookFormat = 'json' | 'slack';

/** Defaults: 5 attempts per event, at most 5 minutes between them. */
export interface WebhookOptions extends SenderOptions {
  /** http(s) URL the events are POSTed to. */
  readonly url: string;
  /**
   * Signing secret (Standard Webhooks: `whsec_<base64>`, or any text of 16 bytes or more). Without it requests are
   * not signed, which only suits receivers that cannot check signatures (Slack).
   */
  readonly secret?: string | undefined;
  /** Which events: `*` (default), a family (`restore.*`) or event types. */
  readonly events?: readonly string[] | undefined;
  /** `json` (the documented event, default) or `slack` (`{ text, blocks }`). */
  readonly format?: WebhookFormat | undefined;
  /** Events waiting at most (the one being sent not counted); the oldest is dropped beyond. @default 1000 */
  readonly maxQueueEvents?: number | undefined;
  /** Bytes of waiting bodies at most; the oldest are dropped beyond. @default 8 MiB */
  readonly maxQueueBytes?: number | undefined;
}

/** What a webhook has done so far. */
export interface DeliveryStats {
  /** Events waiting (the one being sent included). */
  readonly pending: number;
  readonly delivered: number;
  /** Events given up after their attempts, or on a final answer (4xx). */
  readonly failed: number;
  /** Events never delivered because the queue was full, the notifier closed, or the body alone was too large. */
  readonly dropped: number;
  /** Requests repeated after a retryable failure. */
  readonly retries: number;
}

interface Queued {
  readonly event: NotificationEvent;
  readonly body: string;
  readonly bytes: number;
}

export class WebhookNotifier {
  readonly #endpoint: Endpoint;
  readonly #secret: string | undefined;
  readonly #events: readonly string[];
  readonly #format: WebhookFormat;
  readonly #queue: BoundedQueue<Queued>;
  #inFlight: Queued | undefined;
  #closed = false;
  /** Whether `#run` is sending; set and cleared synchronously, so an event queued as it ends is never stranded. */
  #sending = false;
  #pump: Promise<void> = Promise.resolve();
  #stats = { delivered: 0, failed: 0, dropped: 0, retries: 0 };

  constructor(options: WebhookOptions) {
    this.#endpoint = new Endpoint(options.url, options, {
      maxAttempts: 5,
      baseDelayMs: 1000,
      maxDelayMs: 300_000,
      timeoutMs: 10_000,
    });
    const problem = options.secret === undefined ? undefined : secretProblem(options.secret);
    if (problem)
      throw new BackupError(
        'INVALID_OPTION',
        `Invalid option secret (${options.secret!.length} characters, not shown): ${problem}. Expected ${SECRET_ADVICE}.`,
        { details: { option: 'secret' } },
      );
    this.#secret = options.secret;
    this.#events = options.events ?? ['*'];
    const unknown = this.#events.filter((p) => !EVENT_PATTERNS.includes(p));
    if (unknown.length || !this.#events.length)
      throw invalidOption('events', this.#events, `one or more patterns among ${EVENT_PATTERNS.join(', ')}`);
    this.#format = options.format ?? 'json';
    if (this.#format !== 'json' && this.#format !== 'slack')
      throw invalidOption('format', this.#format, 'json or slack');
    this.#queue = new BoundedQueue(options.maxQueueEvents ?? 1000, options.maxQueueBytes ?? 8 * 1024 * 1024);
  }

  /** The receiver as messages show it (scheme, host, port). */
  get target(): string {
    return this.#endpoint.target;
  }

  get stats(): DeliveryStats {
    return { pending: this.#queue.length + (this.#inFlight ? 1 : 0), ...this.#stats };
  }

  /** Whether this webhook takes events of `type` (its `events` filter). */
  accepts(type: NotificationType): boolean {
    return matchesEvent(this.#events, type);
  }

  /**
   * Queues `event` for delivery and returns at once: `true` when queued, `false` when the filter leaves it out or
   * it was dropped (closed, or larger than the whole queue). Never throws.
   */
  notify(event: NotificationEvent): boolean {
    if (!this.accepts(event.type)) return false;
    if (this.#closed || this.#endpoint.stopped) {
      this.#drop(event, 'the notifier is closed');
      return false;
    }
    const body = JSON.stringify(this.#format === 'slack' ? slackMessage(event) : event);
    const item = { event, body, bytes: Buffer.byteLength(body) };
    const dropped = this.#queue.push(item);
    for (const d of dropped)
      this.#drop(
        d.event,
        d === item
          ? `its body (${item.bytes} bytes) is larger than the whole queue (maxQueueBytes ${this.#queue.maxBytes})`
          : `the queue is full (${this.#queue.maxItems} events or ${this.#queue.maxBytes} bytes)`,
      );
    if (dropped.includes(item)) return false;
    if (!this.#sending) {
      this.#sending = true;
      this.#pump = this.#run();
    }
    return true;
  }

  /** Sends the queue in order, one event at a time, until it is empty (or the notifier is stopped). */
  async #run(): Promise<void> {
    try {
      while (!this.#endpoint.stopped) {
        const item = this.#queue.shift();
        if (!item) break;
        this.#inFlight = item;
        const result = await this.#endpoint.send(
          () => this.#request(item),
          () => this.#stats.retries++,
        );
        this.#inFlight = undefined;
        if (result.ok) this.#stats.delivered++;
        else if (result.aborted) this.#drop(item.event, 'the notifier was closed before it was delivered');
        else this.#gaveUp(item.event, result);
      }
      for (const item of this.#queue.clear()) this.#drop(item.event, 'the notifier was closed before it was sent');
    } finally {
      this.#sending = false;
    }
  }

  #request(item: Queued): OutgoingRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      [SIGNATURE_HEADERS.id]: item.event.id,
    };
    if (this.#secret !== undefined) {
      // Signed at each attempt: the timestamp is the time of sending, which the receiver's tolerance is measured from.
      const timestamp = Math.floor(Date.now() / 1000);
      headers[SIGNATURE_HEADERS.timestamp] = String(timestamp);
      headers[SIGNATURE_HEADERS.signature] = signWebhook(this.#secret, item.event.id, timestamp, item.body);
    }
    return { method: 'POST', headers, body: item.body };
  }

  #gaveUp(event: NotificationEvent, result: DeliveryResult): void {
    this.#stats.failed++;
    this.#endpoint.report({
      kind: 'webhook',
      reason: 'gave-up',
      message: `not delivered after ${result.attempts} attempt${result.attempts === 1 ? '' : 's'}: ${result.error}`,
      eventType: event.type,
      eventId: event.id,
      attempts: result.attempts,
      ...(result.status === undefined ? {} : { status: result.status }),
    });
  }

  #drop(event: NotificationEvent, why: string): void {
    this.#stats.dropped++;
    this.#endpoint.report({
      kind: 'webhook',
      reason: 'dropped',
      message: `dropped: ${why}`,
      eventType: event.type,
      eventId: event.id,
    });
  }

  /**
   * Waits until every queued event is delivered or given up, or `timeoutMs` passed: `true` when the queue is empty.
   * Retries keep their backoff; nothing is dropped by a flush that times out.
   */
  flush(timeoutMs = 10_000): Promise<boolean> {
    if (!this.#sending) return Promise.resolve(true);
    const drained = (async () => {
      while (this.#sending) await this.#pump;
    })();
    return settlesWithin(drained, timeoutMs);
  }

  /**
   * Stops taking events, waits up to `timeoutMs` for the queue (as `flush`), then aborts what is left (counted as
   * dropped). Returns the final stats.
   */
  async close(timeoutMs = 5_000): Promise<DeliveryStats> {
    this.#closed = true;
    await this.flush(timeoutMs);
    this.#endpoint.stop();
    await this.#pump;
    return this.stats;
  }
}
