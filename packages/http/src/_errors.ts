import { isAbortError, KoanError } from '@koan/data';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** The JSON shape of every error response, and of a failed job's `error`. */
export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** Library and API codes by HTTP status; anything else is a 500. */
const STATUS_BY_CODE: Readonly<Record<string, ContentfulStatusCode>> = {
  INVALID_OPTION: 400,
  INVALID_NAME: 400,
  INVALID_JSON: 400,
  INVALID_KEY: 400,
  NOTHING_TO_BACK_UP: 400,
  CONFIRMATION_REQUIRED: 400,
  UNAUTHORIZED: 401,
  BACKUP_NOT_FOUND: 404,
  ENTITY_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  NOT_FOUND: 404,
  BACKUP_NOT_RESTORABLE: 409,
  JOB_CONFLICT: 409,
  JOB_FINISHED: 409,
  UNSUPPORTED_MEDIA_TYPE: 415,
  VALIDATION_FAILED: 422,
  SCHEMA_INCOMPATIBLE: 422,
  TARGET_COLLISION: 422,
  ARCHIVE_CORRUPT: 422,
  LINE_TOO_LONG: 422,
  TABLES_NOT_BACKED_UP: 422,
  TOO_MANY_JOBS: 503,
  // A storage backend or data source that cannot be reached now: worth retrying later.
  TRANSIENT: 503,
  SOURCE_UNAVAILABLE: 503,
  PROFILE_UNAVAILABLE: 503,
};

/**
 * The one way handlers fail: an `HTTPException` whose cause is a `KoanError` carrying the stable code and details.
 */
export function httpError(
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
): HTTPException {
  return new HTTPException(status, { message, cause: new KoanError(code, message, { details }) });
}

/** `invalidOption`-style 400 naming the request field. */
export function invalidField(field: string, message: string, details: Record<string, unknown> = {}): HTTPException {
  return httpError(400, 'INVALID_OPTION', message, { field, ...details });
}

/**
 * A library error about an option that is also the request's field (the `BackupQuery` fields of `GET /backups`, a
 * backup's or restore's selection lists) naming it in `details.field`, with the status of its code (`INVALID_OPTION`
 * 400, `ENTITY_NOT_FOUND` 404...); anything else is returned as it is.
 */
export function optionAsField(e: unknown): unknown {
  if (!(e instanceof KoanError)) return e;
  const { option, ...rest } = e.details;
  if (typeof option !== 'string' || rest.field !== undefined) return e;
  return httpError(STATUS_BY_CODE[e.code] ?? 400, e.code, e.message, { field: option, ...rest });
}

/** Code, message and details of anything thrown (a library error keeps its own code). */
export function describeError(e: unknown): ErrorInfo {
  if (e instanceof HTTPException) {
    const cause = e.cause instanceof KoanError ? e.cause : undefined;
    return { code: cause?.code ?? `HTTP_${e.status}`, message: e.message, details: cause?.details ?? {} };
  }
  if (e instanceof KoanError) {
    // A failed backup wraps the underlying failure (SOURCE_UNAVAILABLE, ABORTED...): report the cause's code.
    const inner = e.code === 'BACKUP_FAILED' && e.cause instanceof KoanError ? e.cause : undefined;
    return { code: inner?.code ?? e.code, message: e.message, details: { ...(inner?.details ?? {}), ...e.details } };
  }
  if (isAbortError(e)) return { code: 'ABORTED', message: (e as Error).message, details: {} };
  if (e instanceof Error) return { code: 'INTERNAL', message: e.message, details: {} };
  return { code: 'INTERNAL', message: String(e), details: {} };
}

export function statusOf(e: unknown, info: ErrorInfo): ContentfulStatusCode {
  if (e instanceof HTTPException) return e.status as ContentfulStatusCode;
  return STATUS_BY_CODE[info.code] ?? 500;
}

/** `app.onError`: every failure as `{ error: { code, message, details } }`. */
export function respondWithError(e: unknown, c: Context): Response {
  const info = describeError(e);
  const status = statusOf(e, info);
  if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="koan-backup"');
  return c.json({ error: info }, status);
}
