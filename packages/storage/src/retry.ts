import { StorageError } from './driver.js';

export interface RetryOptions {
  /** Extra attempts after the first. @default 3 */
  readonly retries?: number;
  /** First backoff ceiling; doubles per attempt. @default 100 */
  readonly baseDelayMs?: number;
  /** Largest backoff ceiling. @default 5000 */
  readonly maxDelayMs?: number;
  readonly signal?: AbortSignal;
  /** Whether a failure is worth another attempt. @default isTransientError */
  readonly isTransient?: (error: unknown) => boolean;
  /** Called before each retry (for logging and counters). */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * A conservative default: network resets, timeouts, 408/429/5xx and errors already marked
 * `TRANSIENT`. Drivers pass their own predicate when they know their SDK's error shapes.
 */
export function isTransientError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const e = error as {
    code?: unknown;
    name?: unknown;
    statusCode?: unknown;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  };
  if (e instanceof StorageError) return e.code === 'TRANSIENT';
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  const status = typeof e.statusCode === 'number' ? e.statusCode : e.$metadata?.httpStatusCode;
  if (status !== undefined && (status === 408 || status === 429 || status >= 500)) return true;
  if (e.name === 'TimeoutError') return true;
  return false;
}

/** Full-jitter delay for attempt `n` (0-based): uniform in [0, min(max, base * 2^n)]. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * ceiling);
}

/**
 * Runs `fn` until it succeeds, a failure is not transient, retries run out or `signal` aborts.
 * Backoff is exponential with full jitter (AWS architecture blog, "Exponential Backoff And Jitter").
 * The last error is rethrown as is; callers map it. `withRetry(driver, classify)` applies it to a whole driver.
 *
 * @example
 * const info = await retry((attempt) => client.send(cmd), { retries: 3, signal });
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retries = Math.max(0, options.retries ?? 3);
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 5000;
  const isTransient = options.isTransient ?? isTransientError;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= retries || options.signal?.aborted || !isTransient(error)) throw error;
      const delay = backoffDelay(attempt, base, max);
      options.onRetry?.(error, attempt + 1, delay);
      await sleep(delay, options.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
