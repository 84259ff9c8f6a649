import { Readable } from 'node:stream';
import { type Body, type GetOptions, StorageError } from './driver.js';

/** A Node readable over any `Body` (returned as is when it already is one). */
export function toReadable(body: Body): Readable {
  return body instanceof Readable ? body : Readable.from(body, { objectMode: false });
}

/** Byte-wise (UTF-8) key order, which is what S3 and Azure list in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** An `ABORTED` storage error carrying the signal's reason. */
export function abortedError(
  signal: AbortSignal | undefined,
  context: { profile?: string; key?: string },
): StorageError {
  return new StorageError('ABORTED', `Storage operation on ${JSON.stringify(context.key ?? '')} was cancelled`, {
    ...context,
    cause: signal?.reason,
  });
}

/**
 * Passes bytes through and fails with `IO` when the source ends before (or after) `expected` bytes,
 * so a connection cut mid-body can never look like a short but complete object.
 */
export function expectBytes(
  source: AsyncIterable<Uint8Array>,
  expected: number,
  context: { profile?: string; key?: string; signal?: AbortSignal },
): Readable {
  async function* checked(): AsyncGenerator<Uint8Array> {
    let received = 0;
    for await (const chunk of source) {
      received += chunk.byteLength;
      if (received > expected) break;
      yield chunk;
    }
    if (received !== expected)
      throw new StorageError(
        'IO',
        `Read of ${JSON.stringify(context.key ?? '')} ended after ${received} of ${expected} bytes: the body was truncated`,
        { profile: context.profile, key: context.key },
      );
  }
  return Readable.from(checked(), { objectMode: false, signal: context.signal });
}

/** Validates a range against the object size: HTTP semantics, both ends inclusive, end clamped. */
export function resolveRange(
  range: GetOptions['range'],
  size: number,
  profile: string | undefined,
  key: string,
): { start: number; end: number } | { start?: undefined; end?: undefined } {
  if (!range) return {};
  const { start } = range;
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (!Number.isSafeInteger(start) || start < 0 || start >= size || (range.end !== undefined && range.end < start))
    throw new StorageError(
      'INVALID_RANGE',
      `Range ${start}-${range.end ?? ''} is outside ${JSON.stringify(key)} (${size} bytes)`,
      { profile, key },
    );
  return { start, end };
}
