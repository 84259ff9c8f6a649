/**
 * Delivery to a receiver, shared by webhooks and the heartbeat (an `Endpoint` each): each attempt has its own time limit;
 * network errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter (a `Retry-After` is
 * honoured: never retried sooner than asked); other statuses are final (a 4xx will not change by asking again, and
 * redirects are not followed, so a signed body never goes to a host nobody configured). An abort stops at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BackupError, invalidOption } from '../errors.js';
import { LIBRARY_VERSION } from './events.js';
import { type FailureListener, type NotificationFailure, reportFailure } from './failure.js';

const USER_AGENT = `koan-backup/${LIBRARY_VERSION}`;

export interface RetryOptions {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** Delay before the first retry; it doubles with each retry (with jitter), up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  /** Longest wait between attempts. A receiver asking (`Retry-After`) for longer than this ends the delivery. */
  readonly maxDelayMs: number;
  /** Time limit of each attempt (connect, send, response headers). */
  readonly timeoutMs: number;
}

/** How a delivery ended. */
export interface DeliveryResult {
  readonly ok: boolean;
  /** Requests made. */
  readonly attempts: number;
  /** HTTP status of the last answer, when there was one. */
  readonly status?: number;
  /** Why it failed (the last attempt's problem). */
  readonly error?: string;
  /** Stopped by the abort signal (closing, or the caller's). */
  readonly aborted?: boolean;
}

/** What every notifier takes besides its URL: how it retries and waits, how it is stopped, where failures go. */
export interface SenderOptions {
  /** Attempts per delivery, the first included. */
  readonly maxAttempts?: number | undefined;
  /** Delay before the first retry, doubling with each retry (with jitter). @default 1000 */
  readonly baseDelayMs?: number | undefined;
  /** Longest wait between attempts; a receiver asking (`Retry-After`) for longer ends the delivery. */
  readonly maxDelayMs?: number | undefined;
  /** Time limit of each request. @default 10000 */
  readonly timeoutMs?: number | undefined;
  /** Aborting it stops the request in flight and every retry, for good (as `close` does, without waiting). */
  readonly signal?: AbortSignal | undefined;
  /** Where failures go. @default a `console.warn` line each */
  readonly onFailure?: FailureListener | undefined;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch | undefined;
}

/** A request as a notifier makes it (again for each attempt, so a signature can carry a fresh timestamp). */
export interface OutgoingRequest {
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

interface Sending {
  readonly fetch: typeof fetch;
  readonly signal: AbortSignal;
  readonly onRetry: (() => void) | undefined;
}

type Attempt =
  | { ok: true; status: number }
  | { ok: false; retryable: boolean; error: string; status?: number; retryAfterMs?: number | undefined };

/** Options of the retry loop with `defaults` for what is not given; a value that is not a positive number fails. */
export function retryOptions(
  given: { [K in keyof RetryOptions]?: number | undefined },
  defaults: RetryOptions,
): RetryOptions {
  const pick = (name: keyof RetryOptions): number => {
    const value = given[name] ?? defaults[name];
    const integer = name === 'maxAttempts' || name === 'timeoutMs';
    if (!(Number.isFinite(value) && value > 0 && (!integer || Number.isInteger(value))))
      throw invalidOption(name, given[name], integer ? 'a whole number above 0' : 'a number above 0');
    return value;
  };
  return {
    maxAttempts: pick('maxAttempts'),
    baseDelayMs: pick('baseDelayMs'),
    maxDelayMs: pick('maxDelayMs'),
    timeoutMs: pick('timeoutMs'),
  };
}

/** `url` when it is an http(s) URL; else `INVALID_OPTION` naming `field` (without showing the URL: it may be secret). */
export function checkedUrl(url: unknown, field: string): string {
  let parsed: URL | undefined;
  try {
    parsed = typeof url === 'string' ? new URL(url) : undefined;
  } catch {}
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:'))
    throw new BackupError(
      'INVALID_OPTION',
      `Invalid option ${field}: ${typeof url === 'string' ? `text of ${url.length} characters that is not an http(s) URL` : JSON.stringify(url)}. Expected an http(s) URL such as https://hooks.example.com/koan.`,
      { details: { option: field } },
    );
  return parsed.href;
}

/** The URL as messages show it: scheme, host and port only, since paths and queries often hold secrets (Slack). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' && !u.search ? u.origin : `${u.origin}/...`;
  } catch {
    return '(invalid URL)';
  }
}

/** Whether `promise` settles within `timeoutMs` (it is left running either way). */
export async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Milliseconds a `Retry-After` value asks for (seconds, or an HTTP date), or `undefined` if it says nothing usable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Delay before retry number `retry` (1 for the first): half of the doubled base, plus a random part up to as much. */
export function backoffMs(retry: number, options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (retry - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function networkProblem(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message ?? String(e);
}

async function attemptOnce(url: string, request: OutgoingRequest, retry: RetryOptions, options: Sending) {
  const timeout = AbortSignal.timeout(retry.timeoutMs);
  const signal = AbortSignal.any([options.signal, timeout]);
  try {
    const response = await options.fetch(url, {
      method: request.method,
      headers: { 'user-agent': USER_AGENT, ...request.headers },
      ...(request.body === undefined ? {} : { body: request.body }),
      signal,
      redirect: 'manual',
    });
    // The answer's body is not needed; cancelling it frees the connection.
    await response.body?.cancel().catch(() => undefined);
    const status = response.status;
    if (status >= 200 && status < 300) return { ok: true, status } satisfies Attempt;
    const retryable = status === 408 || status === 429 || status >= 500;
    const redirect = status >= 300 && status < 400 ? ' (redirects are not followed: configure the final URL)' : '';
    return {
      ok: false,
      status,
      retryable,
      retryAfterMs: retryable ? retryAfterMs(response.headers.get('retry-after')) : undefined,
      error: `HTTP ${status}${redirect}`,
    } satisfies Attempt;
  } catch (e) {
    if (options.signal.aborted) return { ok: false, retryable: false, error: 'aborted' } satisfies Attempt;
    const error = timeout.aborted ? `no answer within ${retry.timeoutMs} ms` : networkProblem(e);
    return { ok: false, retryable: true, error } satisfies Attempt;
  }
}

/** Sends `request()` until it succeeds, a final answer comes, attempts run out or `signal` aborts. Never throws. */
async function deliver(
  url: string,
  request: () => OutgoingRequest,
  retry: RetryOptions,
  options: Sending,
): Promise<DeliveryResult> {
  for (let attempt = 1; ; attempt++) {
    if (options.signal.aborted) return { ok: false, attempts: attempt - 1, aborted: true, error: 'aborted' };
    const result = await attemptOnce(url, request(), retry, options);
    const status = result.status === undefined ? {} : { status: result.status };
    if (result.ok) return { ok: true, attempts: attempt, ...status };
    if (options.signal.aborted) return { ok: false, attempts: attempt, aborted: true, error: 'aborted', ...status };
    if (!result.retryable || attempt >= retry.maxAttempts)
      return { ok: false, attempts: attempt, error: result.error, ...status };
    const wait = result.retryAfterMs ?? backoffMs(attempt, retry);
    if (wait > retry.maxDelayMs)
      return {
        ok: false,
        attempts: attempt,
        error: `${result.error}; the receiver asked to retry after ${Math.ceil(wait / 1000)} s, longer than the ${Math.ceil(retry.maxDelayMs / 1000)} s this notifier waits`,
        ...status,
      };
    try {
      // An unref'd timer: a receiver that is down never keeps the process alive (flush/close wait when asked to).
      await sleep(wait, undefined, { ref: false, signal: options.signal });
    } catch {
      return { ok: false, attempts: attempt, aborted: true, error: 'aborted', ...status };
    }
    options.onRetry?.();
  }
}

/**
 * A receiver with its retry policy and stop switch, what a webhook and the heartbeat each have. `send` delivers one
 * request; `stop` aborts the request in flight and every retry, for good; `report` hands a failure on.
 */
export class Endpoint {
  readonly url: string;
  /** The receiver as messages show it: scheme, host and port. */
  readonly target: string;
  readonly #retry: RetryOptions;
  readonly #fetch: typeof fetch;
  readonly #onFailure: FailureListener | undefined;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;

  constructor(url: unknown, options: SenderOptions, defaults: RetryOptions) {
    this.url = checkedUrl(url, 'url');
    this.target = redactUrl(this.url);
    this.#retry = retryOptions(options, defaults);
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#onFailure = options.onFailure;
    this.#signal = options.signal ? AbortSignal.any([options.signal, this.#stop.signal]) : this.#stop.signal;
  }

  /** Stopped by `stop()` or by the caller's signal. */
  get stopped(): boolean {
    return this.#signal.aborted;
  }

  /** Delivers `request()` with retries (`onRetry` before each retry). Never rejects. */
  send(request: () => OutgoingRequest, onRetry?: () => void): Promise<DeliveryResult> {
    return deliver(this.url, request, this.#retry, { fetch: this.#fetch, signal: this.#signal, onRetry }).catch(
      (e: unknown): DeliveryResult => ({ ok: false, attempts: 0, error: String(e) }),
    );
  }

  stop(): void {
    this.#stop.abort();
  }

  report(failure: Omit<NotificationFailure, 'target'>): void {
    reportFailure(this.#onFailure, { ...failure, target: this.target });
  }
}
