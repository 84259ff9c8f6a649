/**
 * The bounds of the numeric options, inclusive: the one copy the engines, the config schema, the CLI and the HTTP API
 * check.
 */
import { invalidOption } from './errors.js';

/** Records per batch: read per query (backup), written per batch (restore). */
export const BATCH_SIZE = Object.freeze({ min: 1, max: 100_000 });
/** Sources backed up or restored at the same time. */
export const MAX_CONCURRENCY = Object.freeze({ min: 1, max: 64 });
/** Deflate level: 0 stores the entries, 1 is fastest, 9 smallest. */
export const COMPRESSION_LEVEL = Object.freeze({ min: 0, max: 9 });

/** Refuses `value` unless it is an integer within `bounds`: `INVALID_OPTION` naming `option` and the bounds. */
export function assertWithin(
  option: string,
  value: unknown,
  bounds: { readonly min: number; readonly max: number },
  minNote = '',
): void {
  if (Number.isInteger(value) && (value as number) >= bounds.min && (value as number) <= bounds.max) return;
  throw invalidOption(option, value, `an integer from ${bounds.min}${minNote} to ${bounds.max}`);
}
