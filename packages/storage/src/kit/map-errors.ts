import type { StorageDriver, StorageError } from '../driver.js';
import { decorate, mapIteration } from './decorate.js';

/** What failed: the key (or listing prefix) as the caller named it, what was being done, and the caller's signal. */
export interface ErrorContext {
  readonly key?: string;
  /** `Uploading`, `Reading`, `Listing`, `Deleting`, `Hashing`, `Listing incomplete uploads in`, `Aborting the upload of`. */
  readonly action: string;
  readonly signal?: AbortSignal;
}

/**
 * Turns any failure into a `StorageError` with a stable code. It returns a `StorageError` it is given as it is, and
 * `ABORTED` when `context.signal` has aborted.
 */
export type ErrorMap = (error: unknown, context: ErrorContext) => StorageError;

/**
 * `driver` with every failure (thrown, or ending a listing) passed through `map`, so what leaves a driver is always a
 * `StorageError` naming the key as the caller gave it. Errors inside a body returned by `get` are the driver's to map.
 */
export function mapErrors(driver: StorageDriver, map: ErrorMap): StorageDriver {
  const guard = async <T>(fn: () => Promise<T>, context: ErrorContext): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw map(e, context);
    }
  };
  return decorate(driver, {
    put: (key, body, o = {}) => guard(() => driver.put(key, body, o), { key, action: 'Uploading', signal: o.signal }),
    get: (key, o = {}) => guard(() => driver.get(key, o), { key, action: 'Reading', signal: o.signal }),
    head: (key, o = {}) => guard(() => driver.head(key, o), { key, action: 'Reading', signal: o.signal }),
    delete: (key, o = {}) => guard(() => driver.delete(key, o), { key, action: 'Deleting', signal: o.signal }),
    sha256: (key, o = {}) => guard(() => driver.sha256!(key, o), { key, action: 'Hashing', signal: o.signal }),
    list: (prefix, o = {}) =>
      mapIteration(driver.list(prefix, o), (e) => map(e, { key: prefix, action: 'Listing', signal: o.signal })),
    listPage: (prefix, o = {}) =>
      guard(() => driver.listPage!(prefix, o), { key: prefix, action: 'Listing', signal: o.signal }),
    listIncomplete: (o = {}) =>
      mapIteration(driver.listIncomplete!(o), (e) =>
        map(e, { action: 'Listing incomplete uploads in', signal: o.signal }),
      ),
    abortIncomplete: (upload) =>
      guard(() => driver.abortIncomplete!(upload), { key: upload.key, action: 'Aborting the upload of' }),
  });
}
