/** What the S3 SDK's failures mean: which are worth another attempt, and the `StorageError` each one is. */
import {
  abortError,
  type ErrorContext,
  isTransientError,
  StorageError,
  type TimeoutKind,
  type Timeouts,
  timeoutError,
} from '@koan/storage';

export const DRIVER_NAME = 's3';

export type SdkError = {
  name?: string;
  message?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
};

const statusOf = (e: unknown) => (e as SdkError)?.$metadata?.httpStatusCode;

export function isNoSuchUpload(e: unknown): boolean {
  const err = e as SdkError;
  return err?.name === 'NoSuchUpload' || err?.Code === 'NoSuchUpload' || statusOf(e) === 404;
}

/** The key is absent (a missing bucket is not this: it is `BUCKET_NOT_FOUND`). */
export function isNoSuchKey(e: unknown): boolean {
  const name = (e as SdkError)?.name;
  return name !== 'NoSuchBucket' && (name === 'NoSuchKey' || name === 'NotFound' || statusOf(e) === 404);
}

const THROTTLING = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'TooManyRequestsException',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** 5xx, throttling, timeouts and connection resets: worth another attempt. */
export function isTransientS3Error(e: unknown): boolean {
  const err = e as SdkError;
  if (!err || typeof err !== 'object') return false;
  if (err.name && THROTTLING.has(err.name)) return true;
  if (err.$retryable) return true;
  return isTransientError(e) || err.message === 'aborted';
}

/** Which timeout of the SDK's HTTP handler fired, if `e` is one. */
export function timeoutKindOf(e: unknown): TimeoutKind | undefined {
  const err = e as SdkError;
  if (err?.name !== 'TimeoutError') return undefined;
  return /establish a connection/.test(err.message ?? '') ? 'connection' : 'request';
}

export interface S3ErrorContext extends ErrorContext {
  readonly profile: string;
  readonly bucket: string;
  /** The configured timeouts, named when one of them fired. */
  readonly timeouts?: Timeouts;
}

/** Maps an SDK failure to a `StorageError` with a stable code. */
export function mapS3Error(e: unknown, ctx: S3ErrorContext): StorageError {
  if (e instanceof StorageError) return e;
  const err = e as SdkError & Error;
  const name = err?.name ?? '';
  const status = statusOf(e);
  const where = ctx.key === undefined ? `bucket ${ctx.bucket}` : `${JSON.stringify(ctx.key)} in bucket ${ctx.bucket}`;
  const opts = { profile: ctx.profile, key: ctx.key, cause: e };
  if (ctx.signal?.aborted || name === 'AbortError')
    return abortError(ctx.signal, { profile: ctx.profile, key: ctx.key });
  const timeout = timeoutKindOf(e);
  if (timeout && ctx.timeouts) {
    const ms = timeout === 'connection' ? ctx.timeouts.connectionTimeoutMs : ctx.timeouts.requestTimeoutMs;
    return timeoutError(timeout, { ...ctx, provider: DRIVER_NAME, where, ms, cause: e });
  }
  if (name === 'NoSuchBucket')
    return new StorageError(
      'BUCKET_NOT_FOUND',
      `[storage] [s3] Bucket ${ctx.bucket} does not exist: create it or fix Settings.Bucket of profile '${ctx.profile}'`,
      opts,
    );
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404)
    return new StorageError('NOT_FOUND', `[storage] [s3] ${where} does not exist`, opts);
  if (name === 'PreconditionFailed' || status === 412)
    return ctx.action === 'Reading'
      ? new StorageError('IO', `[storage] [s3] ${where} was replaced while it was read: read it again`, opts)
      : new StorageError('ALREADY_EXISTS', `[storage] [s3] ${where} already exists`, opts);
  if (name === 'InvalidRange' || status === 416)
    return new StorageError('INVALID_RANGE', `[storage] [s3] The range is outside ${where}`, opts);
  if (
    status === 401 ||
    status === 403 ||
    [
      'AccessDenied',
      'InvalidAccessKeyId',
      'SignatureDoesNotMatch',
      'ExpiredToken',
      'CredentialsProviderError',
    ].includes(name)
  )
    return new StorageError(
      'ACCESS_DENIED',
      `[storage] [s3] ${ctx.action} ${where} was denied (${name || status}): check the credentials of profile '${ctx.profile}' and the bucket policy`,
      opts,
    );
  if (isTransientS3Error(e))
    return new StorageError(
      'TRANSIENT',
      `[storage] [s3] ${ctx.action} ${where} kept failing after retries: ${err?.message ?? name}`,
      opts,
    );
  return new StorageError('IO', `[storage] [s3] ${ctx.action} ${where} failed: ${err?.message ?? name}`, opts);
}
