/** Cancellation: one `ABORTED` error for every operation an `AbortSignal` stopped. */
import { KoanError } from './errors.js';

/** Whether `e` is the `AbortError` (or `ABORT_ERR`) a signal-aware Node or web API throws. */
export function isAbortError(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}

/** Throws the signal's reason as a KoanError with code `ABORTED`. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** The `ABORTED` error of a cancelled operation; its cause is the signal's reason unless `cause` says otherwise. */
export function abortError(signal: AbortSignal, cause: unknown = signal.reason): KoanError {
  return new KoanError('ABORTED', 'The operation was cancelled', { cause });
}

/**
 * What an operation that failed while `signal` aborted throws: `ABORTED`, with the store's own error (a cancelled
 * statement, say) as the cause; any other failure stays as it is.
 */
export function abortedOr(e: unknown, signal: AbortSignal | undefined): unknown {
  if (!signal?.aborted || (e instanceof KoanError && e.code === 'ABORTED')) return e;
  return abortError(signal, e);
}
