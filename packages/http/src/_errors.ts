import { KoanError } from '@koan/data';
import { isAbortError } from '@koan/data/adapter-kit';
import { type ErrorKind, errorKind, underlyingError } from '@koan/data-backup';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** The JSON shape of every error response, and of a failed job's `error`. */
export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** What each kind of library failure (`errorKind`) answers; the operation's own failures are a 500. */
const STATUS_BY_KIND: Readonly<Record<ErrorKind, ContentfulStatusCode>> = {
  invalid: 400,
  configuration: 500,
  'not-found': 404,
  conflict: 409,
  integrity: 422,
  // A storage backend or data source that cannot be reached now: worth retrying later.
  unavailable: 503,
  cancelled: 500,
  failure: 500,
};

/** The API's own codes (the library's are classified by `errorKind`). */
const API_STATUS: Readonly<Record<string, ContentfulStatusCode>> = {
  INVALID_JSON: 400,
  CONFIRMATION_REQUIRED: 400,
  UNAUTHORIZED: 401,
  JOB_NOT_FOUND: 404,
  JOB_CONFLICT: 409,
  JOB_FINISHED: 409,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_JOBS: 503,
};

/** The status of an error code: the API's own, else its kind's, else 500. */
export function statusOfCode(code: string): ContentfulStatusCode {
  return API_STATUS[code] ?? STATUS_BY_KIND[errorKind(code) ?? 'failure'];
}

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
 * backup's or restore's selection lists) naming it in `details.field` (`fields` renames the options whose field is
 * spelled otherwise), with the status of its code (`INVALID_OPTION` 400, `ENTITY_NOT_FOUND` 404...); anything else is
 * returned as it is.
 */
export function optionAsField(e: unknown, fields: Readonly<Record<string, string>> = {}): unknown {
  if (!(e instanceof KoanError)) return e;
  const { option, ...rest } = e.details;
  if (typeof option !== 'string' || rest.field !== undefined) return e;
  return httpError(statusOfCode(e.code), e.code, e.message, { field: fields[option] ?? option, ...rest });
}

/** Code, message and details of anything thrown (a library error keeps its own code). */
export function describeError(e: unknown): ErrorInfo {
  if (e instanceof HTTPException) {
    const cause = e.cause instanceof KoanError ? e.cause : undefined;
    return { code: cause?.code ?? `HTTP_${e.status}`, message: e.message, details: cause?.details ?? {} };
  }
  if (e instanceof KoanError) {
    // A failed backup wraps the underlying failure (SOURCE_UNAVAILABLE, ABORTED...): report the cause's code.
    const inner = underlyingError(e);
    return {
      code: inner.code,
      message: e.message,
      details: inner === e ? e.details : { ...inner.details, ...e.details },
    };
  }
  if (isAbortError(e)) return { code: 'ABORTED', message: (e as Error).message, details: {} };
  if (e instanceof Error) return { code: 'INTERNAL', message: e.message, details: {} };
  return { code: 'INTERNAL', message: String(e), details: {} };
}

export function statusOf(e: unknown, info: ErrorInfo): ContentfulStatusCode {
  if (e instanceof HTTPException) return e.status as ContentfulStatusCode;
  return statusOfCode(info.code);
}

/** `app.onError`: every failure as `{ error: { code, message, details } }`. */
export function respondWithError(e: unknown, c: Context): Response {
  const info = describeError(e);
  const status = statusOf(e, info);
  if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="koan-backup"');
  return c.json({ error: info }, status);
}
