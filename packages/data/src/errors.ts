/** The error base lives in @koan/core (shared with @koan/storage); `DataError` is this package's own. */
import { KoanError } from '@koan/core';

export { abortError, abortedOr, ConfigError, isAbortError, KoanError, throwIfAborted } from '@koan/core';

/** Errors raised by entities, adapters and sources. */
export class DataError extends KoanError {}
