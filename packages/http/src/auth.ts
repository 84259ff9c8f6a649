import { createHash, timingSafeEqual } from 'node:crypto';
import { KoanError } from '@koan/data';
import type { Context, MiddlewareHandler } from 'hono';
import { httpError } from './_errors.js';

/** Decides whether a request may use the API. */
export type AuthCheck = (request: Request) => boolean | Promise<boolean>;

export interface AuthGuardOptions {
  readonly check: AuthCheck;
  /** Requests that need no check (the dashboard page itself, which holds no data). */
  readonly skip?: (c: Context) => boolean;
}

/**
 * Refuses requests the check rejects with `401 UNAUTHORIZED` and `WWW-Authenticate: Bearer`.
 *
 * @example
 * app.use(authGuard({ check: bearerToken(process.env.KOAN_BACKUP_TOKEN!) }));
 */
export function authGuard({ check, skip }: AuthGuardOptions): MiddlewareHandler {
  return async function authGuard(c, next) {
    if (!skip?.(c) && !(await check(c.req.raw)))
      throw httpError(401, 'UNAUTHORIZED', 'Missing or invalid credentials: send Authorization: Bearer <token>.');
    await next();
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The shortest token {@link bearerToken} accepts. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * An {@link AuthCheck} accepting `Authorization: Bearer <token>`, compared in constant time. A token shorter than
 * {@link MIN_TOKEN_LENGTH} throws a `KoanError` with code `INVALID_OPTION` (`details.option: 'token'`).
 *
 * @example
 * createBackupApi(context, { auth: bearerToken(process.env.KOAN_BACKUP_TOKEN!) });
 */
export function bearerToken(token: string): AuthCheck {
  if (token.length < MIN_TOKEN_LENGTH)
    throw new KoanError(
      'INVALID_OPTION',
      `bearerToken: use a token of at least ${MIN_TOKEN_LENGTH} characters (this one has ${token.length}).`,
      { details: { option: 'token', minLength: MIN_TOKEN_LENGTH, length: token.length } },
    );
  const expected = digest(token);
  return function bearerToken(request) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get('authorization') ?? '');
    return match !== null && timingSafeEqual(digest(match[1]!), expected);
  };
}
