/** What the Azure SDK's failures mean: which are worth another attempt, and the `StorageError` each one is. */
import {
  abortError,
  type ErrorContext,
  isTransientError,
  requestTimeoutKind,
  StorageError,
  type Timeouts,
  timeoutError,
} from '@koan/storage';

export const DRIVER_NAME = 'azure-blob';

export type RestErrorLike = {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  details?: { errorCode?: string };
};

const codeOf = (e: unknown) => (e as RestErrorLike)?.details?.errorCode ?? (e as RestErrorLike)?.code ?? '';

/** The blob is absent (a missing container is not this: it is `BUCKET_NOT_FOUND`). */
export function isBlobNotFound(e: unknown): boolean {
  const code = codeOf(e);
  return code !== 'ContainerNotFound' && (code === 'BlobNotFound' || (e as RestErrorLike)?.statusCode === 404);
}

/** 5xx, throttling, timeouts and connection resets: worth another attempt. */
export function isTransientAzureError(e: unknown): boolean {
  const err = e as RestErrorLike;
  if (!err || typeof err !== 'object') return false;
  if (err.code === 'REQUEST_SEND_ERROR' || err.code === 'ServerBusy' || err.code === 'OperationTimedOut') return true;
  return isTransientError(e);
}

export interface AzureErrorContext extends ErrorContext {
  readonly profile: string;
  readonly container: string;
  /** The configured timeouts, named when one of them fired. */
  readonly timeouts?: Timeouts;
}

/** Maps an SDK failure to a `StorageError` with a stable code. */
export function mapAzureError(e: unknown, ctx: AzureErrorContext): StorageError {
  if (e instanceof StorageError) return e;
  const err = e as RestErrorLike;
  const code = codeOf(e);
  const status = err?.statusCode;
  const where =
    ctx.key === undefined ? `container ${ctx.container}` : `${JSON.stringify(ctx.key)} in container ${ctx.container}`;
  const opts = { profile: ctx.profile, key: ctx.key, cause: e };
  if (ctx.signal?.aborted || err?.name === 'AbortError')
    return abortError(ctx.signal, { profile: ctx.profile, key: ctx.key });
  const timeout = requestTimeoutKind(e);
  if (timeout && ctx.timeouts) {
    const ms = timeout === 'connection' ? ctx.timeouts.connectionTimeoutMs : ctx.timeouts.requestTimeoutMs;
    return timeoutError(timeout, { ...ctx, provider: DRIVER_NAME, where, ms, cause: e });
  }
  if (code === 'ContainerNotFound')
    return new StorageError(
      'BUCKET_NOT_FOUND',
      `[storage] [azure-blob] Container ${ctx.container} does not exist: create it, set Settings.CreateContainer, or fix Settings.ContainerName of profile '${ctx.profile}'`,
      opts,
    );
  if (code === 'BlobNotFound' || status === 404)
    return new StorageError('NOT_FOUND', `[storage] [azure-blob] ${where} does not exist`, opts);
  if (ctx.action === 'Reading' && (status === 412 || code === 'ConditionNotMet'))
    return new StorageError(
      'IO',
      `[storage] [azure-blob] ${where} was replaced while it was read: read it again`,
      opts,
    );
  if (code === 'BlobAlreadyExists' || status === 409 || (status === 412 && code === 'ConditionNotMet'))
    return new StorageError('ALREADY_EXISTS', `[storage] [azure-blob] ${where} already exists`, opts);
  if (code === 'InvalidRange' || status === 416)
    return new StorageError('INVALID_RANGE', `[storage] [azure-blob] The range is outside ${where}`, opts);
  if (status === 401 || status === 403 || code.startsWith('Authentication') || code.startsWith('Authorization'))
    return new StorageError(
      'ACCESS_DENIED',
      `[storage] [azure-blob] ${ctx.action} ${where} was denied (${code || status}): check the credentials of profile '${ctx.profile}'`,
      opts,
    );
  if (isTransientAzureError(e))
    return new StorageError(
      'TRANSIENT',
      `[storage] [azure-blob] ${ctx.action} ${where} kept failing after retries: ${err?.message ?? code}`,
      opts,
    );
  return new StorageError('IO', `[storage] [azure-blob] ${ctx.action} ${where} failed: ${err?.message ?? code}`, opts);
}
