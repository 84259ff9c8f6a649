import { Readable } from 'node:stream';
import { assertKey, type GetOptions, type StorageDriver, StorageError } from '../driver.js';
import { abortError } from '../streams.js';
import { decorate } from './decorate.js';

/** A range that cannot be asked for, whatever the object: a negative or fractional start, or an end before it. */
export function assertRange(range: GetOptions['range'], key: string, profile: string | undefined): void {
  if (!range) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start)))
    throw new StorageError(
      'INVALID_RANGE',
      `[storage] Invalid range ${start}-${end ?? ''} of ${JSON.stringify(key)}: the start is a whole number >= 0 and the end, if given, is not before it`,
      { profile, key },
    );
}

/**
 * What every driver refuses before any I/O: an invalid key (`INVALID_KEY`, see `assertKey`), a range that cannot be
 * (`INVALID_RANGE`), and a signal that is already aborted (`ABORTED`; a `put` body that is a stream is destroyed, as
 * `put` consumes it). Listings check the signal when they start.
 */
export function validated(driver: StorageDriver, options: { readonly profile?: string } = {}): StorageDriver {
  const { profile } = options;
  const check = (key: string, signal: AbortSignal | undefined) => {
    assertKey(key, profile);
    if (signal?.aborted) throw abortError(signal, { profile, key });
  };
  const notAborted = (signal: AbortSignal | undefined, key: string) => {
    if (signal?.aborted) throw abortError(signal, { profile, key });
  };
  return decorate(driver, {
    async put(key, body, o = {}) {
      assertKey(key, profile);
      if (o.signal?.aborted) {
        if (body instanceof Readable) body.destroy();
        throw abortError(o.signal, { profile, key });
      }
      return driver.put(key, body, o);
    },
    async get(key, o = {}) {
      check(key, o.signal);
      assertRange(o.range, key, profile);
      return driver.get(key, o);
    },
    async head(key, o = {}) {
      check(key, o.signal);
      return driver.head(key, o);
    },
    async delete(key, o = {}) {
      check(key, o.signal);
      return driver.delete(key, o);
    },
    async sha256(key, o = {}) {
      check(key, o.signal);
      return driver.sha256!(key, o);
    },
    async *list(prefix, o = {}) {
      notAborted(o.signal, prefix);
      yield* driver.list(prefix, o);
    },
    async listPage(prefix, o = {}) {
      notAborted(o.signal, prefix);
      return driver.listPage!(prefix, o);
    },
    async *listIncomplete(o = {}) {
      notAborted(o.signal, o.prefix ?? '');
      yield* driver.listIncomplete!(o);
    },
    async abortIncomplete(upload) {
      assertKey(upload.key, profile);
      return driver.abortIncomplete!(upload);
    },
  });
}
