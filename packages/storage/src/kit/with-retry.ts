import type { StorageDriver } from '../driver.js';
import { type RetryOptions, retry } from '../retry.js';
import { decorate } from './decorate.js';

/** How many times and how long to wait: the driver's `MaxRetries`, `RetryBaseDelayMs`, `RetryMaxDelayMs`. */
export type RetryPolicy = Pick<RetryOptions, 'retries' | 'baseDelayMs' | 'maxDelayMs' | 'onRetry'>;

/**
 * `driver` with each read and delete retried while `classify` calls the failure transient (backoff with full jitter,
 * see `retry`): `get` (opening it), `head`, `delete`, `sha256`, each page of `listPage`, and a listing of a driver
 * without pages or of `listIncomplete` until its first item (after that, a retry would list items twice).
 *
 * `put` and `abortIncomplete` pass through: a body is consumed once, and abandoning an upload is more than one
 * request; their drivers retry each request of them themselves (an SDK's own retries), which is why a driver must
 * not retry the requests under this layer too: each request is retried by one layer, never by two.
 *
 * @example
 * const driver = withRetry(backend, isTransientS3Error, { retries: 3, baseDelayMs: 100, maxDelayMs: 5000 });
 */
export function withRetry(
  driver: StorageDriver,
  classify: (error: unknown) => boolean,
  policy: RetryPolicy = {},
): StorageDriver {
  const run = <T>(fn: () => Promise<T>, signal: AbortSignal | undefined) =>
    retry(fn, { ...policy, signal, isTransient: classify });
  return decorate(driver, {
    get: (key, o = {}) => run(() => driver.get(key, o), o.signal),
    head: (key, o = {}) => run(() => driver.head(key, o), o.signal),
    delete: (key, o = {}) => run(() => driver.delete(key, o), o.signal),
    sha256: (key, o = {}) => run(() => driver.sha256!(key, o), o.signal),
    listPage: (prefix, o = {}) => run(() => driver.listPage!(prefix, o), o.signal),
    list: driver.listPage ? undefined : (prefix, o = {}) => untilFirst(() => driver.list(prefix, o), run, o.signal),
    listIncomplete: (o = {}) => untilFirst(() => driver.listIncomplete!(o), run, o.signal),
  });
}

/** The items of `open()`, opened again (by `run`) while it fails before its first item. */
async function* untilFirst<T>(
  open: () => AsyncIterable<T>,
  run: <R>(fn: () => Promise<R>, signal: AbortSignal | undefined) => Promise<R>,
  signal: AbortSignal | undefined,
): AsyncGenerator<T> {
  const [it, first] = await run(async () => {
    const it = open()[Symbol.asyncIterator]();
    try {
      return [it, await it.next()] as const;
    } catch (e) {
      await it.return?.()?.catch(() => undefined);
      throw e;
    }
  }, signal);
  try {
    for (let next = first; !next.done; next = await it.next()) yield next.value;
  } finally {
    await it.return?.();
  }
}
