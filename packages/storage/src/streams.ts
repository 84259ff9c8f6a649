import { addAbortSignal, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Body, type GetOptions, StorageError } from './driver.js';
import { backoffDelay } from './retry.js';

/** A Node readable over any `Body` (returned as is when it already is one). */
export function toReadable(body: Body): Readable {
  return body instanceof Readable ? body : Readable.from(body, { objectMode: false });
}

/** Byte-wise (UTF-8) key order, which is what S3 and Azure list in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** An `ABORTED` storage error carrying the signal's reason. */
export function abortError(signal: AbortSignal | undefined, context: { profile?: string; key?: string }): StorageError {
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
    try {
      for await (const chunk of source) {
        received += chunk.byteLength;
        if (received > expected) break;
        yield chunk;
      }
    } catch (e) {
      if (e instanceof StorageError) throw e;
      if (context.signal?.aborted) throw abortError(context.signal, context);
      throw new StorageError(
        'IO',
        `Read of ${JSON.stringify(context.key ?? '')} failed after ${received} of ${expected} bytes: ${(e as Error)?.message}`,
        { profile: context.profile, key: context.key, cause: e },
      );
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

/** One response body of a (possibly ranged) read. */
export interface BodyPart {
  readonly body: AsyncIterable<Uint8Array>;
  /** Absolute offset of the body's first byte (from Content-Range; 0 for a whole object). */
  readonly start: number;
  /** Content-Length of this body, when known. */
  readonly length?: number;
}

export interface ResumableBodyOptions {
  /** First absolute byte the caller wants. */
  readonly start: number;
  /** Last absolute byte the caller wants (inclusive). */
  readonly end: number;
  /** Requests the bytes from `pos` to `end` again, pinned to the same object version (ETag). */
  readonly reopen: (pos: number) => Promise<BodyPart>;
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly isTransient: (error: unknown) => boolean;
  readonly signal?: AbortSignal;
  readonly profile?: string;
  readonly key: string;
}

/**
 * The bytes `start..end` of an object as one stream. Each response body is counted against its
 * Content-Length; a body that is cut or ends short is re-requested from the next missing byte
 * (up to `retries` times, a failed re-request counting as one), and bytes outside the window (a
 * server that ignored or widened the Range) are dropped. A read that cannot be completed fails
 * with `IO` (or the re-request's own error when it was refused for good): it never ends short.
 */
export function resumableBody(first: BodyPart, options: ResumableBodyOptions): Readable {
  const { start, end, signal, profile, key } = options;
  async function* read(): AsyncGenerator<Uint8Array> {
    let part: BodyPart | undefined = first;
    let pos = start;
    let failure: unknown;
    for (let attempt = 0; ; ) {
      if (part) {
        const length = part.length ?? Number.POSITIVE_INFINITY;
        let offset = part.start;
        let got = 0;
        const it = part.body[Symbol.asyncIterator]();
        try {
          if (pos > end) return;
          for (;;) {
            const { done, value } = await it.next();
            if (done) break;
            got += value.byteLength;
            if (got > length)
              throw new StorageError(
                'IO',
                `Read of ${JSON.stringify(key)} returned more bytes than its Content-Length`,
                { profile, key },
              );
            const from = Math.max(pos - offset, 0);
            const to = Math.min(value.byteLength, end - offset + 1);
            offset += value.byteLength;
            if (to > from) {
              pos += to - from;
              yield value.subarray(from, to);
            }
            if (pos > end) return;
          }
          failure = Object.assign(new Error(`body ended after ${got} of ${length} bytes`), { code: 'ECONNRESET' });
        } catch (e) {
          if (e instanceof StorageError) throw e;
          failure = e;
        } finally {
          await it.return?.();
        }
      }
      if (signal?.aborted) throw abortError(signal, { profile, key });
      // A re-request the backend refused for good (the object was replaced or removed) says so itself.
      if (failure instanceof StorageError && !options.isTransient(failure)) throw failure;
      if (attempt >= options.retries || !options.isTransient(failure))
        throw new StorageError(
          'IO',
          `Read of ${JSON.stringify(key)} was cut at byte ${pos} of ${start}-${end} (${(failure as Error)?.message}); the object may be incomplete, retry the read`,
          { profile, key, cause: failure },
        );
      await sleep(backoffDelay(attempt++, options.baseDelayMs, options.maxDelayMs), undefined, { signal });
      // A failed re-request is one more failed attempt, retried the same way (nothing below retries it).
      try {
        part = await options.reopen(pos);
      } catch (e) {
        part = undefined;
        failure = e;
      }
    }
  }
  const out = Readable.from(read(), { objectMode: false });
  return signal ? addAbortSignal(signal, out) : out;
}

/** Parses `bytes a-b/size`. */
export function parseContentRange(value: string | undefined): { start: number; end: number; size: number } | undefined {
  const m = value ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(value) : null;
  return m ? { start: Number(m[1]), end: Number(m[2]), size: Number(m[3]) } : undefined;
}
